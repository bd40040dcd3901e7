"""The default drafter: the best template, filled, plus the relevant sentences of a past answer.

Offline, deterministic and fast; it is also what the LLM drafter falls back to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import pairwise

from engine.drafting.protocols import DraftRequest, DraftResult
from engine.drafting.templates import ANSWER_SLOT, Template, TemplateSet, render, template_variables
from engine.errors import TemplateError
from engine.nlp.protocols import RetrievedAnswer
from engine.taxonomy import INTENTS, LANGUAGES, MARKETPLACES

__all__ = ["FBA_INTENTS", "DefaultDrafter", "reply_language", "select_sentences"]

# For FBA orders Amazon handles delivery, damage in transit, returns and cancellation (domain doc §6).
FBA_INTENTS = frozenset({"order_status", "damaged_defective", "return_refund", "cancel_order", "change_order"})
MAX_ANSWER_SENTENCES = 3
ANSWERS_TRIED = 3
DUPLICATE_OVERLAP = 0.75  # share of a sentence's words already in the template
CONFIDENT_RETRIEVAL = 0.5  # an answer this relevant may be used even without word overlap

_CJK_LANGUAGES = frozenset({"ja", "zh"})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n+")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_ORDER_ID = re.compile(r"\d{3}-\d{7}-\d{7}")
_CONTACT = re.compile(r"@|https?://|www\.", re.IGNORECASE)

_GREETINGS = (
    "hello", "hi ", "hi,", "dear", "good morning", "good afternoon", "good evening", "hallo", "guten tag",
    "guten morgen", "liebe ", "lieber ", "sehr geehrte", "bonjour", "bonsoir", "cher ", "chère", "madame",
    "monsieur", "buongiorno", "buonasera", "gentile", "salve", "ciao", "hola", "buenos días", "buenas tardes",
    "estimado", "estimada", "こんにちは", "お世話になっております", "您好", "你好", "olá", "bom dia", "boa tarde",
    "prezado", "prezada", "beste ", "geachte", "dag ", "dzień dobry", "witam", "szanown", "hej", "god dag",
    "merhaba", "sayın", "iyi günler", "مرحب", "عزيزي", "السلام عليكم",
)  # fmt: skip
_SIGN_OFFS = (
    "best regards", "kind regards", "regards", "sincerely", "many thanks", "thank you for your message",
    "thank you for contacting", "viele grüße", "mit freundlichen grüßen", "beste grüße", "liebe grüße",
    "vielen dank für ihre nachricht", "cordialement", "bien cordialement", "merci pour votre message",
    "cordiali saluti", "distinti saluti", "grazie per il messaggio", "saludos", "atentamente", "un saludo",
    "gracias por su mensaje", "よろしくお願い", "今後とも", "お問い合わせいただき", "此致", "atenciosamente",
    "cumprimentos", "met vriendelijke groet", "vriendelijke groeten", "pozdrawiam", "z poważaniem",
    "med vänliga hälsningar", "vänliga hälsningar", "hälsningar", "saygılarımızla", "saygılarımla",
    "مع أطيب التحيات", "مع خالص التحيات",
)  # fmt: skip
# Frequent words of four letters or more that carry no topic.
_STOPWORDS = frozenset(
    (
        "this", "that", "with", "have", "your", "from", "will", "would", "could", "should", "there",
        "their", "about", "which", "when", "what", "where", "been", "were", "they", "them", "than",
        "then", "also", "just", "like", "very", "please", "thank", "thanks", "bitte", "haben", "sind",
        "eine", "einen", "einer", "nicht", "noch", "auch", "wenn", "dass", "sich", "ihre", "ihnen",
        "wird", "werden", "kann", "können", "sehr", "pour", "avec", "vous", "votre", "dans", "nous",
        "sont", "mais", "plus", "merci", "cette", "être", "avoir", "sono", "della", "questo", "questa",
        "anche", "come", "grazie", "molto", "para", "como", "esta", "este", "pero", "muchas", "gracias",
        "usted", "nuestro", "porque", "para", "obrigado", "você", "vocês", "voor", "niet", "maar",
        "zijn", "jullie", "deze", "bedankt", "dziękuję", "jest", "oraz", "tack", "inte", "eller",
        "detta", "için", "teşekkür", "within", "after", "before", "into", "more", "only", "some",
        "over", "such"
    )
)  # fmt: skip


def reply_language(request: DraftRequest) -> str:
    """The request language if the product speaks it, else the marketplace's language, else English."""
    if request.language in LANGUAGES:
        return request.language
    market = MARKETPLACES.get(request.marketplace or "")
    return market.default_language if market else "en"


def _tokens(text: str, language: str) -> set[str]:
    lowered = text.lower()
    if language in _CJK_LANGUAGES or _CJK.search(lowered):
        chars = [c for c in lowered if _CJK.match(c)]
        bigrams = {a + b for a, b in pairwise(chars)}
        words = {w[:5] for w in _WORD.findall(lowered) if len(w) >= 4 and not _CJK.search(w)}
        return bigrams | words
    # A five-letter prefix is a cheap stem that works across European languages (deliver/delivery).
    return {w[:5] for w in _WORD.findall(lowered) if len(w) >= 4 and w not in _STOPWORDS}


def _split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _is_pleasantry(sentence: str) -> bool:
    lowered = sentence.lower().strip()
    if lowered.startswith(_GREETINGS + _SIGN_OFFS):
        return True
    if any(s in lowered for s in _SIGN_OFFS if _CJK.search(s)):  # Japanese closings sit mid-sentence
        return True
    # A name line or a "Hello Anna," line: short and without a full stop.
    return len(lowered.split()) <= 4 and not re.search(r"[.!?。！？]$", lowered)


def _usable(sentence: str, order_id: str | None) -> bool:
    if _CONTACT.search(sentence):
        return False
    return all(found == order_id for found in _ORDER_ID.findall(sentence))


def select_sentences(
    answer: RetrievedAnswer,
    buyer_text: str,
    template_text: str,
    *,
    language: str,
    intent: str,
    order_id: str | None = None,
) -> list[str]:
    """The answer's sentences that speak to the buyer's words and that the template does not say already."""
    buyer = _tokens(buyer_text, language)
    template_sentences = [_tokens(s, language) for s in _split_sentences(template_text)]
    candidates: list[tuple[int, int, str]] = []  # (overlap with buyer, position, sentence)
    for position, sentence in enumerate(_split_sentences(answer.answer)):
        if _is_pleasantry(sentence) or not _usable(sentence, order_id):
            continue
        words = _tokens(sentence, language)
        if not words:
            continue
        if any(len(words & t) >= DUPLICATE_OVERLAP * len(words) for t in template_sentences if t):
            continue
        candidates.append((len(words & buyer), position, sentence))
    overlapping = [c for c in candidates if c[0] > 0]
    if overlapping:
        chosen = sorted(overlapping, key=lambda c: (-c[0], c[1]))[:MAX_ANSWER_SENTENCES]
    elif answer.intent == intent and answer.score >= CONFIDENT_RETRIEVAL:
        chosen = candidates[:2]  # short buyer texts ("still nothing") share no words with any answer
    else:
        chosen = []
    return [sentence for _, _, sentence in sorted(chosen, key=lambda c: c[1])]


class DefaultDrafter:
    """Template + retrieved sentences; no network, no model."""

    name = "default"

    def __init__(self, templates: TemplateSet) -> None:
        self.templates = templates

    def choose_template(self, request: DraftRequest) -> tuple[Template, str | None]:
        """The template for this request, and a note when it had to fall back to another one."""
        language = reply_language(request)
        intent = request.intent if request.intent in INTENTS else "other"
        variables = template_variables(request)
        fba = request.order.fulfillment_channel == "AFN" and intent in FBA_INTENTS
        situation = "fba" if fba else None
        for candidate_intent, candidate_language in ((intent, language), ("other", language), (intent, "en")):
            template = self.templates.best(
                candidate_intent, candidate_language, variables=variables, situation=situation
            )
            if template is not None:
                note = None
                if (candidate_intent, candidate_language) != (intent, language):
                    note = f"No template for {intent} in {language}; used {template.id}."
                return template, note
        raise TemplateError(
            f"No template for {intent} in {language} or English; add one in knowledge/templates/{language}.json."
        )

    def draft(self, request: DraftRequest) -> DraftResult:
        if request.intent == "no_response_needed":
            return DraftResult(text="", action="no_response_needed", drafter=self.name)
        template, note = self.choose_template(request)
        variables: dict[str, str | None] = dict(template_variables(request))
        skeleton = render(template, variables)
        source_ids: tuple[int, ...] = ()
        if template.has_answer_slot:
            for answer in self._candidates(request.retrieved, template.language, template.intent):
                sentences = select_sentences(
                    answer,
                    request.text,
                    skeleton,
                    language=template.language,
                    intent=template.intent,
                    order_id=request.order.order_id,
                )
                if sentences:
                    joiner = "" if template.language in _CJK_LANGUAGES else " "
                    variables[ANSWER_SLOT] = joiner.join(sentences)
                    source_ids = (answer.knowledge_id,)
                    break
        text = render(template, variables) if source_ids else skeleton
        return DraftResult(
            text=text,
            action="reply",
            drafter=self.name,
            template_id=template.id,
            source_ids=source_ids,
            note=note,
        )

    @staticmethod
    def _candidates(retrieved: Iterable[RetrievedAnswer], language: str, intent: str) -> list[RetrievedAnswer]:
        same_language = [a for a in retrieved if a.language == language]
        ranked = sorted(same_language, key=lambda a: (a.intent == intent, a.score), reverse=True)
        return ranked[:ANSWERS_TRIED]

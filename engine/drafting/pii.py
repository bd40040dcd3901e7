"""Mask buyer personal data before text leaves the building (LLM prompt), restore it afterwards.

`mask` replaces known values (the buyer's name), e-mail addresses, phone numbers, street addresses and
postcodes with placeholders such as `[[BUYER_NAME]]` or `[[EMAIL_1]]`; `unmask` puts the originals back.
Detection is pattern-based and errs on the side of masking: a false positive only hides a few
characters from the model and is restored afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

__all__ = ["PLACEHOLDER", "Masker", "mask", "unmask"]

PLACEHOLDER = re.compile(r"\[\[\s*([A-Za-z][A-Za-z0-9_]*)\s*\]\]")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
_ORDER_ID = re.compile(r"\b\d{3}-\d{7}-\d{7}\b")
# A run of digits with the separators phone numbers use; checked for 7-15 digits afterwards.
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d \t()/.-]{5,}\d(?!\w)")
_DATE_LIKE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")

_STREET_WORDS_AFTER = (  # "12 Baker Street", "5 rue de la Paix", "10 calle Mayor"
    r"street|st\.?|road|rd\.?|avenue|ave\.?|lane|ln\.?|drive|dr\.?|boulevard|blvd\.?|way|court|ct\.?"
    r"|place|pl\.?|terrace|close|crescent"
)
_STREET_PREFIXES = (  # "rue de la Paix 5", "via Roma 10", "calle Mayor 5", "ul. Długa 5", "Rua Augusta 100"
    r"rue|avenue|boulevard|bd|chemin|impasse|allée|place|via|viale|piazza|corso|largo|vicolo|calle|c/|"
    r"avenida|avda\.?|paseo|plaza|camino|rua|travessa|praça|alameda|ul\.|ulica|al\.|aleja|os\.|"
    r"straat|laan"
)
_STREET_SUFFIXES = (  # "Hauptstraße 12", "Dorpsstraat 5", "Storgatan 3", "Lindenweg 7a"
    r"straße|strasse|str\.|weg|gasse|allee|platz|ring|damm|ufer|chaussee|steig|"
    r"straat|laan|gracht|plein|kade|singel|"
    r"gatan|vägen|gränd|torget|"
    r"sokak|sokağı|sk\.|cadde|caddesi|cad\.|bulvarı"
)
_WORD = r"[A-Za-zÀ-ÖØ-öø-ÿĀ-žçğışöüÇĞİŞÖÜ'’-]+"
_HOUSE = r"\d{1,4}(?:[a-zA-Z]\b|\b)"  # 12, 7a, 221B (postcodes have five digits)
_ADDRESS_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(rf"\b{_HOUSE}(?:,)?\s+(?:{_WORD}\s+){{1,3}}(?:{_STREET_WORDS_AFTER})\b\.?", re.IGNORECASE),
    re.compile(
        rf"\b{_HOUSE}(?:\s?(?:bis|ter))?,?\s+(?:{_STREET_PREFIXES})\s+(?:{_WORD}\s+){{0,3}}{_WORD}",
        re.IGNORECASE,
    ),
    re.compile(
        rf"(?<!\w)(?:{_STREET_PREFIXES})\s+(?:{_WORD}\s+){{0,4}}{_WORD},?\s+(?:n[.º°o]\s*)?{_HOUSE}",
        re.IGNORECASE,
    ),
    re.compile(rf"\b{_WORD}(?:{_STREET_SUFFIXES})\s+(?:no:?\s*)?{_HOUSE}", re.IGNORECASE),
    re.compile(rf"\b{_WORD}\s+(?:{_STREET_SUFFIXES})\s+(?:no:?\s*)?{_HOUSE}", re.IGNORECASE),
    # Japanese: prefecture, then city/ward and block numbers ("東京都渋谷区神南1-2-3").
    re.compile(
        r"(?:東京都|北海道|(?:京都|大阪)府|[\u4e00-\u9fff]{2,3}県)[\u3040-\u30ff\u4e00-\u9fff]{1,20}"
        r"[0-9０-９]+(?:[-－ー丁目番地号の][0-9０-９]*)*"
    ),
)
_POSTCODE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b"),  # UK
    re.compile(r"\b[A-Z]\d[A-Z]\s?\d[A-Z]\d\b"),  # Canada
    re.compile(r"〒\s?\d{3}-?\d{4}"),  # Japan
    re.compile(r"\b\d{4}\s?[A-Z]{2}\b"),  # Netherlands
    re.compile(r"\b\d{2}-\d{3}\b"),  # Poland
    re.compile(r"\b\d{5}-\d{3}\b"),  # Brazil
    re.compile(r"\b\d{3}\s\d{2}(?=\s+[A-ZÅÄÖ])"),  # Sweden
    re.compile(r"\b\d{5}(?:-\d{4})?(?=\s+[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ])"),  # 5 digits before a town name
    re.compile(r"(?<=\b[A-Z]{2}\s)\d{5}(?:-\d{4})?\b"),  # US: state code, then ZIP
)


class Masker:
    """Masks several texts with one shared mapping (a prompt is built from several pieces)."""

    def __init__(self, known: Mapping[str, str] | None = None, *, keep: Iterable[str] = ()) -> None:
        self.mapping: dict[str, str] = {}  # placeholder -> original
        self._by_original: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._known = {k: v.strip() for k, v in (known or {}).items() if v and v.strip()}
        self._keep = {k for k in keep if k}

    def _placeholder(self, kind: str, original: str, *, numbered: bool = True) -> str:
        if original in self._by_original:
            return self._by_original[original]
        if numbered:
            self._counters[kind] = self._counters.get(kind, 0) + 1
            key = f"{kind}_{self._counters[kind]}"
        else:
            key = kind
        placeholder = f"[[{key}]]"
        self.mapping[placeholder] = original
        self._by_original[original] = placeholder
        return placeholder

    def mask(self, text: str) -> str:
        text = _EMAIL.sub(lambda m: self._placeholder("EMAIL", m.group(0)), text)
        text = self._mask_known(text)
        for pattern in _ADDRESS_PATTERNS:
            text = pattern.sub(lambda m: self._sub_unless_kept("ADDRESS", m), text)
        for pattern in _POSTCODE_PATTERNS:
            text = pattern.sub(lambda m: self._sub_unless_kept("POSTCODE", m), text)
        return _PHONE.sub(self._phone, text)

    def _mask_known(self, text: str) -> str:
        for kind, value in self._known.items():
            label = re.sub(r"\W+", "_", kind).strip("_").upper() or "KNOWN"
            whole = re.compile(rf"(?<!\w){re.escape(value)}(?!\w)", re.IGNORECASE)
            text = whole.sub(self._known_replacer(label, value), text)
            # Buyers sign with a first name only; mask each part of a known name on its own too.
            for part in value.split():
                if len(part) < 3 or part == value:
                    continue
                alone = re.compile(rf"(?<![\w\[]){re.escape(part)}(?![\w\]])", re.IGNORECASE)
                text = alone.sub(self._known_replacer(label, None), text)
        return text

    def _known_replacer(self, label: str, exact: str | None) -> Callable[[re.Match[str]], str]:
        """The exact known value gets the plain placeholder; variants and parts get numbered ones."""

        def replace(match: re.Match[str]) -> str:
            found = match.group(0)
            return self._placeholder(label, found, numbered=found != exact)

        return replace

    def _sub_unless_kept(self, kind: str, match: re.Match[str]) -> str:
        found = match.group(0)
        if "[[" in found or any(k in found for k in self._keep) or _ORDER_ID.search(found):
            return found
        return self._placeholder(kind, found)

    def _phone(self, match: re.Match[str]) -> str:
        found = match.group(0).strip()
        digits = sum(c.isdigit() for c in found)
        if (
            not 7 <= digits <= 15
            or _ORDER_ID.search(found)
            or _DATE_LIKE.match(found)
            or any(found in k or k in found for k in self._keep)
        ):
            return match.group(0)
        return match.group(0).replace(found, self._placeholder("PHONE", found))


def mask(text: str, known: Mapping[str, str] | None = None, *, keep: Iterable[str] = ()) -> tuple[str, dict[str, str]]:
    """`known` maps a label to a value (`{"buyer_name": "Anna Schmidt"}` -> `[[BUYER_NAME]]`);
    `keep` lists values never to mask (the order id, the tracking number)."""
    masker = Masker(known, keep=keep)
    return masker.mask(text), dict(masker.mapping)


def unmask(text: str, mapping: Mapping[str, str]) -> str:
    """Put the originals back; placeholders are matched even if a model changed their case or spacing."""
    normalised = {PLACEHOLDER.sub(lambda m: m.group(1).upper(), k): v for k, v in mapping.items()}

    def restore(match: re.Match[str]) -> str:
        return normalised.get(match.group(1).upper(), match.group(0))

    return PLACEHOLDER.sub(restore, text)


def unknown_placeholders(text: str, mapping: Mapping[str, str]) -> list[str]:
    """Placeholders left in `text` that `mapping` cannot restore (a model invented them)."""
    known = {PLACEHOLDER.sub(lambda m: m.group(1).upper(), k) for k in mapping}
    return [m.group(0) for m in PLACEHOLDER.finditer(text) if m.group(1).upper() not in known]

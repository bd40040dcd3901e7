"""Detectors for ways to reach the seller outside Amazon: links, email addresses and phone numbers.

All functions take the *folded* text (see `textfold`) and yield `Hit`s; offsets are the original's.
Phone numbers are the hard part: order ids, tracking numbers, prices, dates and model numbers are
digit runs too. Dates, prices and order ids are masked first; a digit run right after an id keyword
("tracking number", "Seriennummer", "追跡番号") is never a phone; a run after a phone keyword ("Tel.",
"rufen Sie", "电话") is one whatever its shape; otherwise the shape decides.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from typing import NamedTuple

from engine.compliance.lexicon import ID_KEYWORDS, PHONE_KEYWORDS


class Hit(NamedTuple):
    rule: str
    start: int
    end: int


# --- links -------------------------------------------------------------------------------------------

_TLDS = (
    "com|net|org|info|biz|io|co|me|shop|store|online|site|app|xyz|eu|de|at|ch|fr|be|it|es|nl|pl|se|dk|"
    "no|fi|pt|ie|uk|us|ca|mx|br|au|jp|cn|hk|tw|kr|in|tr|ru|ly|gl|gd|to|link|page|club|top|vip|cc|tv|ws|"
    "cz|hu|ro|gr|ae|sa|sg|nz|za|ar|cl|lu|li"
)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_URL_TAIL = r"(?:[/?#:][^\s<>\"'\[\]{}|\\^`]*)?"
_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"'\[\]{}|\\^`]+|\bwww\d?\.[^\s<>\"'\[\]{}|\\^`]+", re.IGNORECASE)
_BARE_DOMAIN = re.compile(rf"(?<![\w@.\-/:])(?:{_LABEL}\.)+(?:{_TLDS})(?![\w-]){_URL_TAIL}", re.IGNORECASE)
_SPELLED_DOT = r"(?:\s*[\(\[\{]\s*(?:dot|punkt|point|punto|\.)\s*[\)\]\}]\s*|\s+(?:dot|DOT|Dot)\s+)"
_SPELLED_DOMAIN = re.compile(rf"(?<![\w@.])\b{_LABEL}{_SPELLED_DOT}(?:{_TLDS})\b", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?)'\"»」』）。、"

# Amazon's own sites (the marketplaces' domains, Seller Central) may be named: the return flow lives there.
_AMAZON_TLDS = (
    "com|ca|com\\.mx|com\\.br|co\\.uk|de|fr|it|es|nl|se|pl|com\\.tr|com\\.be|ie|ae|sa|eg|in|co\\.jp|com\\.au|sg|cn"
)
_AMAZON_HOST = re.compile(rf"(?:[a-z0-9-]+\.)*amazon\.(?:{_AMAZON_TLDS})\.?", re.IGNORECASE)


def _host_of(link: str) -> str:
    rest = re.sub(r"^[a-z]+://", "", link, flags=re.IGNORECASE)
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    authority = authority.rpartition("@")[2]  # https://amazon.de@evil.example goes to evil.example
    return authority.split(":", 1)[0].lower()


def is_amazon_link(link: str) -> bool:
    return _AMAZON_HOST.fullmatch(_host_of(link)) is not None


def link_host(link: str) -> str:
    return _host_of(link)


def find_links(folded: str) -> Iterator[Hit]:
    for pattern in (_URL, _BARE_DOMAIN):
        for match in pattern.finditer(folded):
            start, end = match.span()
            while end > start and folded[end - 1] in _TRAILING_PUNCTUATION:
                end -= 1
            if end > start and not is_amazon_link(folded[start:end]):
                yield Hit("link", start, end)
    for match in _SPELLED_DOMAIN.finditer(folded):
        yield Hit("link", *match.span())


# --- email -------------------------------------------------------------------------------------------

_LOCAL = r"[A-Za-z0-9](?:[A-Za-z0-9._%+\-]{0,63})"
_AT_WORDS = r"at|ät|arobase|chiocciola|arroba|アットマーク"
_DOT_WORDS = r"dot|punkt|point|punto|ドット"
_BRACKET_AT = rf"\s*[\(\[\{{<]\s*(?:{_AT_WORDS}|@)\s*[\)\]\}}>]\s*"
_BRACKET_DOT = rf"\s*[\(\[\{{<]\s*(?:{_DOT_WORDS}|\.)\s*[\)\]\}}>]\s*"
_ANY_DOT = rf"(?:\s*\.\s*|{_BRACKET_DOT}|\s+(?:{_DOT_WORDS})\s+)"
_EMAIL = re.compile(
    rf"(?<![\w.+-]){_LOCAL}(?:\s*@\s*|{_BRACKET_AT})[A-Za-z0-9-]+(?:{_ANY_DOT}[A-Za-z0-9-]+)*{_ANY_DOT}[A-Za-z]{{2,24}}\b",
    re.IGNORECASE,
)
# "name at shop dot com": the plain word "at" counts only together with a spelled-out dot.
_EMAIL_SPELLED = re.compile(
    rf"(?<![\w.+-]){_LOCAL}\s+(?:{_AT_WORDS})\s+[A-Za-z0-9-]+(?:\s+(?:{_DOT_WORDS})\s+[A-Za-z0-9-]+)+\b",
    re.IGNORECASE,
)
_EMAIL_REMOVED = re.compile(r"\[\s*e-?mail[\s-]*address\s+removed\s*\]", re.IGNORECASE)


def find_emails(folded: str) -> Iterator[Hit]:
    for pattern in (_EMAIL, _EMAIL_SPELLED):
        for match in pattern.finditer(folded):
            yield Hit("email", *match.span())
    for match in _EMAIL_REMOVED.finditer(folded):
        yield Hit("email_placeholder", *match.span())


# --- phone -------------------------------------------------------------------------------------------

_ORDER_ID = r"\b\d{3}-\d{7}-\d{7}\b"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_DATE = (
    rf"(?<![\d.,/-])(?:{_DAY}[./-]{_MONTH}[./-](?:\d{{4}}|\d{{2}})|\d{{4}}[./-]{_MONTH}[./-]{_DAY}"
    rf"|{_MONTH}/{_DAY}/(?:\d{{4}}|\d{{2}}))(?![./-]?\d)"
)
_CURRENCY = r"(?:[€$£¥₹]|US\$|EUR|USD|GBP|JPY|CNY|RMB|CHF|CAD|AUD|MXN|SEK|PLN|TRY|INR|円|元)"
_CURRENCY_AFTER = (
    r"(?:[€$£¥₹]|EUR|USD|GBP|JPY|CNY|RMB|CHF|CAD|AUD|MXN|SEK|PLN|TRY|INR|円|元|"
    r"[Ee]uros?|dollars?|[Yy]en|yuan|pounds?|sterline|libras?)"
)
_AMOUNT = r"\d{1,3}(?:[.,' ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_PRICE = (
    rf"{_CURRENCY}\s?(?:{_AMOUNT})|(?<![\d.,])(?:{_AMOUNT})\s?{_CURRENCY_AFTER}"
    r"|(?<![\d.,])\d{1,3}(?:[.,]\d{3})*[.,]\d{2}(?![\d.,])"
)
_UPS = r"\b1Z ?[0-9A-Z]{3} ?[0-9A-Z]{3} ?[0-9A-Z]{2} ?[0-9A-Z]{4} ?[0-9A-Z]{4}\b"
_MASK = re.compile(f"{_ORDER_ID}|{_UPS}|{_DATE}|{_PRICE}")

_SEP = r"(?: ?[-/] ?|\.| )"
_RUN = re.compile(
    r"(?<![A-Za-z0-9_+])(?<![A-Za-z0-9_][-/.])(?<!\d[.,])"
    r"(?:\+ ?)?(?:(?:\d{1,4} ?)?\(\d{1,5}\) ?)?\d+(?:" + _SEP + r"\d+)*"
    r"(?![A-Za-z0-9_])(?![-/.,]\d)(?![-/][A-Za-z])"
)
_ID_GAP = re.compile(r"[^\d\n.!?。！？]{0,20}")
_PHONE_GAP = re.compile(r"[^\d\n.!?。！？]{0,32}|[^\d\n]{0,12}")


def _masked(folded: str) -> str:
    return _MASK.sub(lambda m: "_" * (m.end() - m.start()), folded)


def _looks_like_phone(run: str) -> bool:
    """The shape test for a digit run with no keyword before it."""
    groups = re.findall(r"\d+", run)
    digits = "".join(groups)
    count = len(digits)
    separated = len(groups) > 1
    if run.startswith("+"):
        return 8 <= count <= 15 and digits[0] != "0"
    if digits.startswith("00") and not digits.startswith("000"):
        return 10 <= count <= 17
    if run.startswith("("):
        return 7 <= count <= 12
    if digits.startswith("0"):
        if not separated:
            return 10 <= count <= 11
        # 4-4-4 is the shape of Yamato and Japan Post tracking numbers, never of a phone number
        return 9 <= count <= 12 and [len(g) for g in groups] != [4, 4, 4]
    if count == 11 and digits[0] == "1":
        return (not separated and digits[1] in "3456789") or (separated and groups[0] == "1")
    if not separated or not 9 <= count <= 11 or not 2 <= len(groups[0]) <= 4:
        return False
    if any(len(g) < 2 for g in groups):
        return False
    thousands = all(len(g) == 3 for g in groups[1:]) and re.search(r"\d[.,]\d", run) is not None
    return not thousands


class _KeywordIndex:
    """Keyword matches sorted by end, to find the nearest one before a digit run."""

    def __init__(self, folded: str) -> None:
        found = [(m.end(), m.start(), "id") for m in ID_KEYWORDS.finditer(folded)]
        found += [(m.end(), m.start(), "phone") for m in PHONE_KEYWORDS.finditer(folded)]
        found.sort()
        self._ends = [end for end, _, _ in found]
        self._kinds = [kind for _, _, kind in found]

    def nearest_before(self, folded: str, position: int) -> str | None:
        index = bisect_right(self._ends, position) - 1
        if index < 0:
            return None
        kind = self._kinds[index]
        gap = folded[self._ends[index] : position]
        pattern = _ID_GAP if kind == "id" else _PHONE_GAP
        return kind if pattern.fullmatch(gap) else None


def find_phones(folded: str) -> Iterator[Hit]:
    masked = _masked(folded)
    keywords: _KeywordIndex | None = None
    for match in _RUN.finditer(masked):
        run = match.group()
        digit_count = sum(c.isdigit() for c in run)
        if digit_count < 6:
            continue
        if keywords is None:
            keywords = _KeywordIndex(folded)
        context = keywords.nearest_before(folded, match.start())
        if context == "id" and not run.startswith("+"):
            continue
        if (context == "phone" and digit_count <= 15) or _looks_like_phone(run):
            yield Hit("phone", *match.span())

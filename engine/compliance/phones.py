"""Phone numbers, in any shape: grouped by spaces, dots, dashes or line breaks, in any digit script
(normalised before this runs), spelled out in words (seven or more digits in a row, en/de/fr/it/es/ja/zh),
and vanity numbers (1-800-FLOWERS).

Order ids, tracking numbers, prices, dates and model numbers are digit runs too, so context decides:
dates, prices, order ids and UPS numbers are masked first; a run right after an id keyword ("tracking
number", "Seriennummer", "追跡番号") is no phone; after a generic reference word ("Reference:", "Nr.")
it is one only when libphonenumber (`phonenumbers`) reads it as a real number in a marketplace's
region; after a phone keyword ("Tel.", "rufen Sie", "电话") it is one whatever its shape; otherwise
the shape decides, with libphonenumber settling the ambiguous ones (612.345.678).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

from engine.compliance.lexicon import ID_KEYWORDS, PHONE_KEYWORDS
from engine.compliance.links import Hit
from engine.compliance.matcher import compile_re2, is_letter

# The marketplaces' regions (the UK marketplace is region GB), and neighbours sellers ship to.
REGIONS = ("US", "CA", "MX", "BR", "GB", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "TR", "AE", "JP", "CN", "AT", "CH",
           "BE", "IE", "SA", "EG", "IN", "AU", "SG")  # fmt: skip
_MAX_LIBPHONENUMBER_CHECKS = 40  # per reply: beyond that, the shape alone decides
_MASK_REACH = 32  # characters either side of a digit run that a mask (a price, a date) may span
_CONTEXT_WINDOW = 72  # characters before a digit run searched for a keyword (the longest gap is 32)

# --- masks: what looks like a number but is not a phone ------------------------------------------------

# Digits are everywhere in a reply, so these patterns match thousands of times: Python's engine is
# far quicker per match than RE2's wrapper, and possessive quantifiers (`++`, `*+`) and bounded
# repetitions leave it nothing to backtrack; what a look-ahead would check is checked on the match.
_ORDER_ID = re.compile(r"\d{3}-\d{7}-\d{7}")
_UPS = re.compile(r"1Z ?[0-9A-Z]{3} ?[0-9A-Z]{3} ?[0-9A-Z]{2} ?[0-9A-Z]{4} ?[0-9A-Z]{4}")
# A date: the loose shape is found fast, then the day, month and year are checked on the match.
_DATE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{2,4}")
_DATE_PARTS = re.compile(r"(\d+)([./-])(\d+)([./-])(\d+)")
_CURRENCY = r"(?:[€$£¥₹]|US\$|EUR|USD|GBP|JPY|CNY|RMB|CHF|CAD|AUD|MXN|SEK|PLN|TRY|INR|円|元)"
_CURRENCY_AFTER = (
    r"(?:[€$£¥₹]|EUR|USD|GBP|JPY|CNY|RMB|CHF|CAD|AUD|MXN|SEK|PLN|TRY|INR|円|元|"
    r"[Ee]uros?|dollars?|[Yy]en|yuan|pounds?|sterline|libras?)"
)
_AMOUNT = r"\d{1,3}(?:[.,' ]\d{3})++(?:[.,]\d{1,2})?|\d++(?:[.,]\d{1,2})?"
_PRICE_BEFORE = re.compile(rf"{_CURRENCY}\s?(?:{_AMOUNT})")
_CURRENCY_AFTER_ONLY = compile_re2(_CURRENCY_AFTER)
_AMOUNT_BEFORE = re.compile(rf"(?:{_AMOUNT})$")
_DECIMAL = re.compile(r"\d{1,3}(?:[.,]\d{3})*+[.,]\d{2}")

# --- digit runs ----------------------------------------------------------------------------------------

_SEP = r"(?:[ \t]{0,3}[-/][ \t]{0,3}|\.|[ \t]{1,3}|[ \t]*\n[ \t]*)"
_RUN = re.compile(r"(?:\+ ?)?(?:(?:\d{1,4} ?)?\(\d{1,5}\) ?)?\d++(?:" + _SEP + r"\d++)*+")
_GROUPS = re.compile(r"\d+")
# Digits with what may group them: found fast (it starts with a digit); runs are looked for around them.
_DIGIT_CLUSTER = re.compile(r"\d[\d \t./()\n-]{5,}+")
_ID_GAP = re.compile(r"[^\d\n.!?。！？]{0,20}")
_PHONE_GAP = re.compile(r"[^\d\n.!?。！？]{0,32}|[^\d\n]{0,12}")
# Generic reference words: a number after them is still a phone when it is a real one.
_REFERENCE_WORDS = re.compile(
    r"ref\.?|reference|referenz|r[ée]f[ée]rence|riferimento|referencia|ticket|case(?:\s*(?:id|number))?|caso|"
    r"dossier|pratica|vorgang\w*|no\.|nr\.|n[°º]",
    re.IGNORECASE,
)

# --- spelled-out digits and vanity numbers ------------------------------------------------------------

_DIGIT_WORDS = (
    "zero|oh|one|two|three|four|five|six|seven|eight|nine|"  # en
    "null|eins|zwei|zwo|drei|vier|fünf|fuenf|sechs|sieben|acht|neun|"  # de
    "zéro|une|un|deux|trois|quatre|cinq|sept|huit|neuf|"  # fr
    "uno|due|tre|quattro|cinque|sei|sette|otto|nove|"  # it
    "cero|dos|tres|cuatro|cinco|seis|siete|ocho|nueve"  # es
)
_SPELLED = compile_re2(rf"(?:{_DIGIT_WORDS})(?:[\s,.\-/]{{1,3}}(?:{_DIGIT_WORDS}))+", ignore_case=True)
_SPELLED_MIN = 7  # digits in a row that make a phone number
_CJK_DIGIT = "〇零一二三四五六七八九幺两兩壱弐参"
_SPELLED_CJK = re.compile(rf"(?:[{_CJK_DIGIT}]|ゼロ)(?:[\s、,]{{0,2}}(?:[{_CJK_DIGIT}]|ゼロ|\d))*+")
_VANITY = compile_re2(
    r"(?:\+?1[ .-]?)?\(?8(?:00|33|44|55|66|77|88)\)?[ .-]?[A-Z0-9]{3}[ .-]?[A-Z0-9]{4}"
    r"|(?:\+\d{1,3}[ .-]?|0)(?:800|80|180\d?|900|120)[ .-]?[A-Z0-9]{3,4}[ .-]?[A-Z0-9]{2,6}"
)


_DIGIT_NEXT = re.compile(r"[./-]?\d")
_GROUP_NEXT = re.compile(r"[ .,]?\d")
_DECIMAL_NEXT = re.compile(r"[.,]?\d")


def _masked(text: str) -> str:
    """`text` with order ids, UPS numbers, dates and prices overwritten by underscores (same length)."""
    spans: list[tuple[int, int]] = []
    for pattern in (_ORDER_ID, _UPS):
        for match in pattern.finditer(text):
            start, end = match.span()
            if not is_letter(text, start - 1) and not is_letter(text, end):
                spans.append((start, end))
    for match in _DATE.finditer(text):
        start, end = match.span()
        before = text[start - 1] if start else ""
        if (
            before not in ".,/-"
            and not before.isdigit()
            and not _DIGIT_NEXT.match(text, end)
            and _is_date(match.group())
        ):
            spans.append((start, end))
    for match in _PRICE_BEFORE.finditer(text):
        if not _GROUP_NEXT.match(text, match.end()):  # "$555 123 4567" is a phone after a dollar sign
            spans.append(match.span())
    for match in _CURRENCY_AFTER_ONLY.finditer(text):
        amount_end = match.start() - (1 if match.start() and text[match.start() - 1].isspace() else 0)
        amount = _AMOUNT_BEFORE.search(text, max(0, amount_end - 24), amount_end)
        if amount is not None:
            spans.append((amount.start(), match.end()))
    for match in _DECIMAL.finditer(text):
        start, end = match.span()
        before = text[start - 1] if start else ""
        if before not in ".," and not before.isdigit() and not _DECIMAL_NEXT.match(text, end):
            spans.append((start, end))
    if not spans:
        return text
    spans.sort()
    parts: list[str] = []
    last = 0
    for start, end in spans:
        start = max(start, last)
        if end <= start:
            continue
        parts.append(text[last:start])
        parts.append("_" * (end - start))
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _is_date(found: str) -> bool:
    """d.m.y, y-m-d or m/d/y with a real day and month (a four-digit year first or last)."""
    parts = _DATE_PARTS.fullmatch(found)
    if parts is None:
        return False
    first, separator, middle, separator_2, last = parts.groups()
    if separator != separator_2:
        return False
    if len(first) == 4:
        return 1 <= int(middle) <= 12 and 1 <= int(last) <= 31 and len(last) <= 2
    if len(first) > 2 or len(last) == 3:
        return False
    day_first = 1 <= int(first) <= 31 and 1 <= int(middle) <= 12
    month_first = separator == "/" and 1 <= int(first) <= 12 and 1 <= int(middle) <= 31
    return day_first or month_first


def _looks_like_phone(run: str) -> bool:
    """The shape test for a digit run with no keyword before it."""
    groups = _GROUPS.findall(run)
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
    return not _thousands(run, groups)


def _thousands(run: str, groups: list[str]) -> bool:
    return all(len(g) == 3 for g in groups[1:]) and re.search(r"\d[.,]\d", run) is not None


class _Checks:
    """libphonenumber's opinion, asked a bounded number of times per reply."""

    def __init__(self) -> None:
        self.left = _MAX_LIBPHONENUMBER_CHECKS

    def real_number(self, run: str) -> bool:
        """A valid number in some marketplace region, written as one would dial it there."""
        digits = "".join(_GROUPS.findall(run))
        if not 7 <= len(digits) <= 15 or self.left <= 0:
            return False
        self.left -= 1
        dialled = run.lstrip().startswith(("+", "0", "("))
        candidate = " ".join(run.split())
        for region in REGIONS:
            for match in PhoneNumberMatcher(candidate, region, leniency=Leniency.VALID):
                if len(match.raw_string) < len(candidate) - 2:
                    continue
                kind = phonenumbers.number_type(match.number)
                if dialled or kind == phonenumbers.PhoneNumberType.MOBILE:
                    return True
        return False


def _context(text: str, position: int) -> str | None:
    """The kind of the nearest keyword before a digit run: "id", "reference", "phone" or None."""
    window_start = max(0, position - _CONTEXT_WINDOW)
    window = text[window_start:position]
    nearest: tuple[int, int, str] | None = None
    for keywords, kind in ((ID_KEYWORDS, "id"), (PHONE_KEYWORDS, "phone")):
        for start, end in keywords.finditer(window):
            if nearest is None or (end, kind == "phone") > (nearest[1], nearest[2] == "phone"):
                nearest = (start, end, kind)
    if nearest is None:
        return None
    start, end, kind = nearest
    gap = window[end:]
    if not (_ID_GAP if kind == "id" else _PHONE_GAP).fullmatch(gap):
        return None
    if kind == "id" and _REFERENCE_WORDS.fullmatch(window[start:end]):
        return "reference"
    return kind


def _run_bounded(text: str, start: int, end: int) -> bool:
    """The run is a whole token: the checks Python's look-around did before."""
    before = text[start - 1] if start else ""
    if before and (before.isascii() and (before.isalnum() or before in "_+")):
        return False
    if start >= 2 and text[start - 1] in "-/." and (text[start - 2].isalnum() or text[start - 2] == "_"):
        return False
    if start >= 2 and text[start - 1] in ".," and text[start - 2].isdigit():
        return False
    after = text[end : end + 2]
    if after[:1] and after[:1].isascii() and (after[:1].isalnum() or after[:1] == "_"):
        return False
    return not (len(after) == 2 and after[0] in "-/.," and after[1].isdigit()) and not (
        len(after) == 2 and after[0] in "-/" and after[1].isalpha()
    )


def _candidate_windows(text: str) -> list[tuple[int, int]]:
    """Stretches around digit runs long enough to be a phone number: only there do masks matter."""
    windows: list[tuple[int, int]] = []
    for match in _DIGIT_CLUSTER.finditer(text):
        if sum(map(str.isdigit, match.group())) < 6:
            continue
        start, end = max(0, match.start() - _MASK_REACH), min(len(text), match.end() + _MASK_REACH)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def find_phones(text: str) -> Iterator[Hit]:
    checks = _Checks()
    for window_start, window_end in _candidate_windows(text):
        window = _masked(text[window_start:window_end])
        for start, end, run in _runs(window, window_start, window_end == len(text)):
            yield from _judge(text, start, end, run, checks)
    yield from _spelled(text)
    for match in _VANITY.finditer(text):
        start, end = match.span()
        letters = sum(c.isalpha() for c in match.group())
        if letters >= 3 and not is_letter(text, start - 1) and not is_letter(text, end):
            yield Hit("phone", start, end)


def _runs(masked: str, offset: int, at_text_end: bool) -> Iterator[tuple[int, int, str]]:
    """Whole digit runs of at least 6 digits in a masked window, offsets in the text."""
    for match in _RUN.finditer(masked):
        start, end = match.span()
        run = match.group()
        if len(run) < 6 or sum(map(str.isdigit, run)) < 6 or not _run_bounded(masked, start, end):
            continue
        if (start == 0 and offset > 0) or (end == len(masked) and not at_text_end):
            continue  # cut by the window's edge: the window reaches past every candidate
        yield start + offset, end + offset, run


def _judge(text: str, start: int, end: int, run: str, checks: _Checks) -> Iterator[Hit]:
    """A digit run is a phone number by its context (the keyword before it) or by its shape."""
    context = _context(text, start)
    if context == "id" and not run.startswith("+"):
        return
    if context == "reference":
        if checks.real_number(run):
            yield Hit("phone", start, end)
        return
    by_context = context == "phone" and sum(map(str.isdigit, run)) <= 15
    if by_context or _looks_like_phone(run) or (_ambiguous(run) and checks.real_number(run)):
        yield Hit("phone", start, end)


def _ambiguous(run: str) -> bool:
    """Shapes the shape test refuses but a real number may have: 612.345.678, 0176.123.4567."""
    groups = _GROUPS.findall(run)
    return len(groups) >= 3 and 9 <= sum(len(g) for g in groups) <= 12 and "." in run


def _spelled(text: str) -> Iterator[Hit]:
    for match in _SPELLED.finditer(text):
        start, end = match.span()
        tokens = re.findall(r"[^\s,.\-/]+", match.group())
        if is_letter(text, start - 1) or is_letter(text, end) or len(tokens) < _SPELLED_MIN:
            continue
        yield Hit("phone", start, end)
    for match in _SPELLED_CJK.finditer(text):
        found = match.group()
        numerals = sum(not c.isascii() and c not in "、，" and not c.isspace() for c in found)
        digits = sum(c.isdigit() for c in found) - sum(c.isdigit() and not c.isascii() for c in found)
        if numerals >= 3 and numerals + digits - found.count("ゼロ") >= 7:
            yield Hit("phone", *match.span())

"""Naming disguises: invisible characters as violations of their own, the disguise behind each violation
in words ("a zero-width space hides a link"), and the text as the gate sees it, with invisible
characters made visible (`⟨ZWSP⟩`) for the agent who reviews it.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from engine.compliance.normalize import (
    BIDI_OVERRIDES,
    INVISIBLE,
    SPACED,
    Normalized,
    invisible_marker,
    is_invisible,
)
from engine.compliance.rules import RULE_BY_ID
from engine.compliance.verdict import Severity, Violation

RULE_NOUNS = {
    "link": "a link",
    "email": "an e-mail address",
    "phone": "a phone number",
    "messenger": "a messenger or social media name",
    "off_amazon": "a sale or payment off Amazon",
    "marketing": "marketing",
    "review_manipulation": "a review request",
    "html": "HTML",
    "placeholder": "a placeholder",
}
_TOKEN_SIGNS = frozenset("@./:#+")
_TOKEN_REACH = 40  # characters looked at either side of an invisible character
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_JOINS_EMOJI = frozenset("\u200d\ufe0e\ufe0f")


@dataclass(frozen=True)
class Disguise:
    invisible: tuple[str, ...]  # phrases of the invisible characters inside ("a zero-width space")
    kinds: tuple[str, ...]  # other disguises ("look-alike letters from another script")


def disguise_in(normalized: Normalized, start: int, end: int, *, squeezed: bool = False) -> Disguise:
    invisible: list[str] = []
    positions = normalized.invisibles  # ascending
    for index in range(bisect_left(positions, start), len(positions)):
        if positions[index] >= end:
            break
        phrase = invisible_marker(normalized.original[positions[index]])[1]
        if phrase not in invisible:
            invisible.append(phrase)
        if len(invisible) > 3:
            break
    kinds: list[str] = []
    for position in range(start, min(end, start + 400)):
        kind = normalized.disguised.get(position)
        if kind is not None and kind != INVISIBLE and kind not in kinds:
            kinds.append(kind)
    if squeezed:
        kinds.append(SPACED)
    return Disguise(tuple(invisible), tuple(kinds))


def explain(rule: str, disguise: Disguise, description: str) -> str:
    """The rule's explanation, led by the disguise it saw through."""
    noun = RULE_NOUNS.get(rule)
    if noun is None or not (disguise.invisible or disguise.kinds):
        return description
    sentences = []
    if disguise.invisible:
        names = " and ".join(disguise.invisible)
        sentences.append(f"{names[0].upper()}{names[1:]} hides {noun} here (shown as ⟨…⟩ in the preview).")
    if disguise.kinds:
        kinds = " and ".join(disguise.kinds)
        sentences.append(f"{kinds[0].upper()}{kinds[1:]} disguise {noun} here.")
    return " ".join(sentences) + " " + description


def invisible_violations(normalized: Normalized, blocking: Sequence[tuple[int, int, str]]) -> Iterable[Violation]:
    """One violation per run of invisible characters: a block inside a blocked span, a number, an address
    or a link-like token, or for a bidi override; a warning anywhere else."""
    text = normalized.original
    info = RULE_BY_ID["invisible"]
    overridden = any(text[p] in BIDI_OVERRIDES for p in normalized.invisibles)
    runs: list[list[int]] = []
    for position in normalized.invisibles:
        if _part_of_emoji(text, position):
            continue
        if runs and runs[-1][-1] == position - 1:
            runs[-1].append(position)
        else:
            runs.append([position])
    for run in runs:
        start, end = run[0], run[-1] + 1
        chars = [text[p] for p in run]
        markers = "".join(f"⟨{invisible_marker(c)[0]}⟩" for c in chars)
        phrase = invisible_marker(chars[0])[1]
        severity: Severity
        inside = next((rule for s, e, rule in blocking if s <= start and end <= e), None)
        if inside is not None:
            why = f"{phrase[0].upper()}{phrase[1:]} ({markers}) hides {RULE_NOUNS.get(inside, 'a violation')}."
            severity = "block"
        elif overridden and any(c in BIDI_CONTROLS for c in chars):
            why = f"{phrase[0].upper()}{phrase[1:]} ({markers}) makes the buyer read the text reversed."
            severity = "block"
        elif _inside_token(text, start, end):
            why = f"{phrase[0].upper()}{phrase[1:]} ({markers}) sits inside a number, address or name."
            severity = "block"
        else:
            why = f"The reply contains {phrase} ({markers}), which the buyer cannot see."
            severity = "warn"
        yield Violation("invisible", severity, start, end, text[start:end], f"{why} {info.description}")


def _part_of_emoji(text: str, position: int) -> bool:
    if text[position] not in _JOINS_EMOJI:
        return False
    before = position - 1
    while before >= 0 and is_invisible(text[before]):
        before -= 1
    return before >= 0 and unicodedata.category(text[before]) in ("So", "Sk")


def _inside_token(text: str, start: int, end: int) -> bool:
    """Between two visible characters of one word, or of a token that holds a digit, an @, a dot or a slash."""
    if start == 0 or end >= len(text) or text[start - 1].isspace() or text[end].isspace():
        return False
    if text[start - 1].isalpha() and text[end].isalpha():
        # a soft hyphen inside a word is a hyphenation hint copied from a web page; anything else hides
        return set(text[start:end]) != {"\u00ad"}
    left = start
    while left > 0 and start - left < _TOKEN_REACH and not text[left - 1].isspace():
        left -= 1
    right = end
    while right < len(text) and right - end < _TOKEN_REACH and not text[right].isspace():
        right += 1
    return any(c.isdigit() or c in _TOKEN_SIGNS for c in text[left:right])


def reveal(text: str) -> tuple[str, list[int]]:
    """`text` with each invisible character shown as a marker (`⟨ZWSP⟩`), and for each original offset
    (and the end) its offset in the revealed text, so spans can be highlighted there."""
    parts: list[str] = []
    positions: list[int] = []
    length = 0
    for char in text:
        positions.append(length)
        shown = f"⟨{invisible_marker(char)[0]}⟩" if is_invisible(char) else char
        parts.append(shown)
        length += len(shown)
    positions.append(length)
    return "".join(parts), positions

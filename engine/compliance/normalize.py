"""What the gate reads: the reply normalised, with every character traced back to the original.

Before any rule runs, a reply is normalised the way a disguise would be undone by a reader:
NFKC (full-width and styled letters, odd spaces), Unicode's confusable skeletons (UTS #39 data) for
Latin look-alikes from Cyrillic, Greek and other scripts, every script's digits as ASCII digits,
dot look-alikes as ".", and invisible format characters (zero-width spaces, joiners, bidi controls,
soft hyphens, variation selectors) removed; a right-to-left override is undone by reversing what it
reverses. A second, *squeezed* view joins letters spread out with spaces or dots ("W e C h a t",
"P.a.y.P.a.l") and CJK characters split by spaces ("加我微 信").

Each view keeps where each of its characters came from, so a violation found in a view is reported
with `start`/`end` in the original text, and can name the disguise it found.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType

from engine.compliance.matcher import compile_re2

# --- invisible characters ----------------------------------------------------------------------------

INVISIBLE_NAMES: MappingProxyType[str, tuple[str, str]] = MappingProxyType(
    {
        "\u200b": ("ZWSP", "a zero-width space"),
        "\u200c": ("ZWNJ", "a zero-width non-joiner"),
        "\u200d": ("ZWJ", "a zero-width joiner"),
        "\u2060": ("WJ", "a word joiner"),
        "\ufeff": ("ZWNBSP", "a zero-width no-break space"),
        "\u00ad": ("SHY", "a soft hyphen"),
        "\u034f": ("CGJ", "a combining grapheme joiner"),
        "\u180e": ("MVS", "a Mongolian vowel separator"),
        "\u200e": ("LRM", "a left-to-right mark"),
        "\u200f": ("RLM", "a right-to-left mark"),
        "\u061c": ("ALM", "an Arabic letter mark"),
        "\u202a": ("LRE", "a left-to-right embedding"),
        "\u202b": ("RLE", "a right-to-left embedding"),
        "\u202c": ("PDF", "a pop directional formatting"),
        "\u202d": ("LRO", "a left-to-right override"),
        "\u202e": ("RLO", "a right-to-left override"),
        "\u2066": ("LRI", "a left-to-right isolate"),
        "\u2067": ("RLI", "a right-to-left isolate"),
        "\u2068": ("FSI", "a first-strong isolate"),
        "\u2069": ("PDI", "a pop directional isolate"),
        "\u115f": ("HCF", "a Hangul filler"),
        "\u1160": ("HJF", "a Hangul filler"),
        "\u3164": ("HF", "a Hangul filler"),
        "\uffa0": ("HWHF", "a Hangul filler"),
    }
)
BIDI_OVERRIDES = frozenset("\u202d\u202e")
_REVERSING = "\u202e"
_BIDI_ENDS = frozenset("\u202c\u2069\n")


def is_invisible(char: str) -> bool:
    code = ord(char)
    return (
        char in INVISIBLE_NAMES
        or unicodedata.category(char) == "Cf"
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0xE0100 <= code <= 0xE01EF
    )


def invisible_marker(char: str) -> tuple[str, str]:
    """(short marker, phrase) for an invisible character: ("ZWSP", "a zero-width space")."""
    if char in INVISIBLE_NAMES:
        return INVISIBLE_NAMES[char]
    code = ord(char)
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:
        return "VS", "a variation selector"
    return f"U+{code:04X}", "an invisible format character"


# --- the character table -----------------------------------------------------------------------------

# Kinds of disguise a changed character reveals; the gate names them in its explanations.
FULLWIDTH = "full-width characters"
HOMOGLYPH = "look-alike letters from another script"
STYLED = "styled look-alike characters"
DIGITS = "digits from another script"
DOT = "a look-alike dot"
INVISIBLE = "invisible characters"
REVERSED = "a right-to-left override that reverses it"
SPACED = "letters spread out with spaces or dots"

_DOTS = "\u3002\uff0e\uff61\ufe52\u2024\ua4f8\u0701\u0702\u2e3c\U00010a50"  # 。 ． ｡ ﹒ ․ ꓸ ...
_DOTS_BETWEEN_LATIN = "\u00b7\u2022\u30fb\uff65\u2027\u2219\u22c5\u0387\u16eb"  # · • ・ ‧ ∙ ⋅: only inside a token
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_LONG_VOWEL = "\u30fc\uff70"  # Japanese writers type ー as a dash between digits (090ー1234ー5678)
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC", "LISU", "GEORGIAN", "OSAGE", "VAI")
_SCANNED_RANGES = (
    (0x00A0, 0x3400),
    (0xA490, 0xABFF),
    (0xF900, 0x10000),
    (0x10400, 0x10500),
    (0x1D400, 0x1D800),
    (0x1F100, 0x1F200),
    (0xE0000, 0xE01F0),
)


def _skeletons() -> dict[str, str]:
    """Letters of Latin-like scripts that Unicode's confusables data (UTS #39) maps to one ASCII letter."""
    data = json.loads(resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    table: dict[str, str] = {}
    for key, entries in data.items():
        group = [key, *(entry["c"] for entry in entries)]
        ascii_letters = [c for c in group if len(c) == 1 and c.isascii() and c.isalpha()]
        if len(ascii_letters) != 1:
            continue
        target = ascii_letters[0]
        for char in group:
            if len(char) != 1 or char.isascii() or not char.isalpha():
                continue
            name = unicodedata.name(char, "")
            if name.split(" ")[0] in _SCRIPTS:
                table.setdefault(char, target)
    return table


def _build_table() -> tuple[dict[str, str], dict[str, str]]:
    """(replacement, disguise kind) for every character the normalisation changes."""
    skeleton = _skeletons()
    replacement: dict[str, str] = {}
    kind: dict[str, str] = {}
    for low, high in _SCANNED_RANGES:
        for code in range(low, high):
            char = chr(code)
            if unicodedata.category(char) == "Cs":
                continue
            if is_invisible(char):
                replacement[char], kind[char] = "", INVISIBLE
                continue
            folded = unicodedata.normalize("NFKC", char)
            if unicodedata.category(char) == "Nd":
                replacement[char], kind[char] = str(unicodedata.decimal(char)), DIGITS
                continue
            folded = "".join(skeleton.get(c, c) for c in folded)
            if folded != char:
                replacement[char] = folded
                if 0xFF00 <= code <= 0xFFEF or code == 0x3000:
                    kind[char] = FULLWIDTH
                elif char in skeleton:
                    kind[char] = HOMOGLYPH
                else:
                    kind[char] = STYLED
    for char in _DOTS:
        replacement[char], kind[char] = ".", DOT
    for char in _DASHES:
        replacement[char], kind[char] = "-", STYLED
    for char, target in skeleton.items():
        replacement.setdefault(char, target)
        kind.setdefault(char, HOMOGLYPH)
    return replacement, kind


_REPLACEMENT, _KIND = _build_table()


def _special_pattern() -> re.Pattern[str]:
    """One character class for the characters normalisation changes: ranges of the Basic Multilingual
    Plane (a bitmap Python scans fast, without backtracking) and any character beyond it (rare: emoji,
    mathematical letters), which `normalize` looks up one by one."""
    codes = sorted(
        ord(c) for c in set(_REPLACEMENT) | set(_DOTS_BETWEEN_LATIN) | set(_LONG_VOWEL) | set(INVISIBLE_NAMES)
    )
    ranges: list[list[int]] = []
    for code in codes:
        if code >= 0x10000:
            continue
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    parts = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{parts}]|[\U00010000-\U0010ffff]")


_SPECIAL = _special_pattern()


# --- views ---------------------------------------------------------------------------------------------


@dataclass
class View:
    """A text derived piece by piece from a base text; `base_span` maps a span of it back."""

    text: str = ""
    _starts: list[int] = field(default_factory=list)  # view offset where each piece starts
    _base_starts: list[int] = field(default_factory=list)
    _base_ends: list[int] = field(default_factory=list)
    _identity: list[bool] = field(default_factory=list)

    def cuts(self) -> list[int]:
        """Offsets where a piece of the base text was left out or changed."""
        found = []
        for index, start in enumerate(self._starts):
            if index == 0:
                if self._base_starts[0] != 0 or not self._identity[0]:
                    found.append(0)
                continue
            if not self._identity[index] or self._base_starts[index] != self._base_ends[index - 1]:
                found.append(start)
        return found

    def base_span(self, start: int, end: int) -> tuple[int, int]:
        if not self._starts:
            return start, end
        end = max(end, start + 1)
        first = max(bisect_right(self._starts, start) - 1, 0)
        last = max(bisect_right(self._starts, end - 1) - 1, 0)
        low, high = None, None
        for index in range(first, last + 1):
            piece_start = self._starts[index]
            if self._identity[index]:
                a = self._base_starts[index] + max(start, piece_start) - piece_start
                piece_end = self._starts[index + 1] if index + 1 < len(self._starts) else len(self.text)
                b = self._base_starts[index] + min(end, piece_end) - piece_start
            else:
                a, b = self._base_starts[index], self._base_ends[index]
            low = a if low is None else min(low, a)
            high = b if high is None else max(high, b)
        assert low is not None and high is not None
        return low, high


class _Builder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.view = View()
        self.length = 0

    def copy(self, base: str, start: int, end: int) -> None:
        if end > start:
            self._piece(base[start:end], start, end, identity=True)

    def replace(self, replacement: str, start: int, end: int) -> None:
        if replacement:
            self._piece(replacement, start, end, identity=False)

    def _piece(self, text: str, start: int, end: int, *, identity: bool) -> None:
        view = self.view
        view._starts.append(self.length)
        view._base_starts.append(start)
        view._base_ends.append(end)
        view._identity.append(identity)
        self.parts.append(text)
        self.length += len(text)

    def finish(self) -> View:
        self.view.text = "".join(self.parts)
        return self.view


@dataclass(frozen=True)
class Normalized:
    original: str
    view: View  # what the rules read
    squeezed: View  # `view` with spread-out letters joined; its base is `view.text`
    squeezed_short: View  # the same, a trailing one-letter word ("y", "a") left out of each run
    invisibles: tuple[int, ...]  # offsets of invisible characters in the original, ascending
    disguised: MappingProxyType[int, str]  # original offset -> the disguise its change reveals

    def original_span(self, start: int, end: int, *, squeezed: View | None = None) -> tuple[int, int]:
        if squeezed is not None:
            start, end = squeezed.base_span(start, end)
        return self.view.base_span(start, end)


def _ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _visible_before(text: str, index: int) -> str:
    """The character before `index`, stepping over one space ("mystore ⋅ com")."""
    before = text[index - 1] if index > 0 else ""
    return text[index - 2] if before == " " and index > 1 else before


def _visible_after(text: str, index: int) -> str:
    after = text[index + 1] if index + 1 < len(text) else ""
    return text[index + 2] if after == " " and index + 2 < len(text) else after


def _neighbours(text: str, index: int) -> tuple[str, str]:
    before = text[index - 1] if index > 0 else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    return before, after


def normalize(text: str) -> Normalized:
    """The reply as the rules read it, with the map back to `text`."""
    if text.isascii():
        view = View(text)
        return Normalized(text, view, squeeze(text), squeeze(text, spare_last_word=True), (), MappingProxyType({}))
    builder = _Builder()
    invisibles: list[int] = []
    disguised: dict[int, str] = {}
    last = 0
    reverse_until = -1
    for match in _SPECIAL.finditer(text):
        index = match.start()
        if index < reverse_until:
            continue
        builder.copy(text, last, index)
        last = index + 1
        char = text[index]
        if is_invisible(char):
            invisibles.append(index)
            if char == _REVERSING:
                reverse_until = _reverse_run(text, index + 1, builder, disguised, invisibles)
                last = reverse_until
            continue
        before, after = _neighbours(text, index)
        if char in _LONG_VOWEL:
            if before.isdigit() and after.isdigit():
                builder.replace("-", index, index + 1)
            else:
                builder.copy(text, index, index + 1)
            continue
        if char in _DOTS_BETWEEN_LATIN:
            if _ascii_alnum(_visible_before(text, index)) and _ascii_alnum(_visible_after(text, index)):
                builder.replace(".", index, index + 1)
                disguised[index] = DOT
            else:
                builder.copy(text, index, index + 1)
            continue
        replacement = _REPLACEMENT.get(char)
        if replacement is None:  # a character beyond the BMP that normalisation keeps (an emoji)
            builder.copy(text, index, index + 1)
            continue
        builder.replace(replacement, index, index + 1)
        disguised[index] = _KIND.get(char, STYLED)
    builder.copy(text, last, len(text))
    view = builder.finish()
    return Normalized(
        text,
        view,
        squeeze(view.text),
        squeeze(view.text, spare_last_word=True),
        tuple(sorted(invisibles)),
        MappingProxyType(disguised),
    )


def _reverse_run(text: str, start: int, builder: _Builder, disguised: dict[int, str], invisibles: list[int]) -> int:
    """Add text[start:stop] reversed, as a reader sees it after a right-to-left override; returns stop."""
    stop = start
    while stop < len(text) and text[stop] not in _BIDI_ENDS:
        stop += 1
    for index in range(stop - 1, start - 1, -1):
        char = text[index]
        disguised[index] = REVERSED
        if is_invisible(char):
            invisibles.append(index)
            continue
        builder.replace(_REPLACEMENT.get(char, char), index, index + 1)
    if stop < len(text) and text[stop] != "\n":
        invisibles.append(stop)
        stop += 1
    return stop


# --- the squeezed view ---------------------------------------------------------------------------------

_SPREAD = compile_re2(r"[A-Za-z](?:[ ._*/|,-]{1,2}[A-Za-z]){2,}")
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}ー"
_CJK_GAP = compile_re2(rf"[{_CJK}]([ \t]+)")


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return 0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or code >= 0x20000


# One-letter words that may follow a spread-out name: "W h a t s A p p y ..." (Spanish "and").
_ONE_LETTER_WORDS = frozenset("yaeoiuàè")


def squeeze(text: str, *, spare_last_word: bool = False) -> View:
    """`text` with letters spread out one by one joined ("W e C h a t" → "WeChat") and spaces between
    CJK characters removed; base offsets point into `text`. `spare_last_word` leaves a trailing
    one-letter word ("y", "a", "e") of a run out of it."""
    cuts: list[tuple[int, int]] = []
    for match in _SPREAD.finditer(text):
        start, end = match.span()
        if start > 0 and text[start - 1].isalnum():  # the first letter ended a word: leave it out
            start += 1
            while start < end and not text[start].isalnum():
                start += 1
        while end < len(text) and text[end].isalnum():  # the last letter began a word: leave it out
            end -= 1
            while end > start and not text[end - 1].isalnum():
                end -= 1
        if spare_last_word and end - start >= 7 and text[end - 1] in _ONE_LETTER_WORDS and text[end - 2] == " ":
            end -= 2
        run = text[start:end]
        if len(run) < 5:
            continue
        dotted = all(c == "." for c in run[1::2]) and all(len(s) == 1 for s in run.split("."))
        position = start
        while position < end:
            if not run[position - start].isalnum() and (dotted or run[position - start] != "."):
                cuts.append((position, position + 1))
            position += 1
    for match in _CJK_GAP.finditer(text):
        if match.end() < len(text) and _is_cjk(text[match.end()]):
            cuts.append(match.span(1))
    if not cuts:
        return View(text)
    cuts.sort()
    builder = _Builder()
    last = 0
    for start, end in cuts:
        if start < last:
            continue
        builder.copy(text, last, start)
        last = end
    builder.copy(text, last, len(text))
    return builder.finish()

"""Linear-time matching for the gate: RE2 (`google-re2`) patterns and multilingual keyword lists.

RE2 cannot backtrack, so no reply, however long or hostile, makes a rule slow. It has no look-around:
what Python patterns said with `(?<!...)`/`(?!...)` is said here with a checked boundary or a *stop*
alternative (a longer phrase that, matched first, hides the keyword: "good morning" hides "good").
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator
from typing import Any

import re2

Span = tuple[int, int]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.max_mem = 256 << 20  # room for the DFA of the long keyword lists

LATIN_LETTERS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    + "".join(chr(c) for c in range(0x00C0, 0x0250) if chr(c).isalpha())
)
_RETRY_WINDOW = 160  # characters searched again after a match that failed its boundary check


def compile_re2(pattern: str, *, ignore_case: bool = False) -> Any:
    """An RE2 pattern; raises ValueError naming the pattern when RE2 rejects it."""
    try:
        return re2.compile(("(?i)" if ignore_case else "") + pattern, _OPTIONS)
    except re2.error as exc:
        raise ValueError(f"The gate pattern {pattern[:80]!r} is not valid RE2: {exc}") from exc


def is_letter(text: str, index: int) -> bool:
    return 0 <= index < len(text) and text[index] in LATIN_LETTERS


def spans(pattern: Any, text: str) -> Iterator[Span]:
    for match in pattern.finditer(text):
        if match.end() > match.start():
            yield match.start(), match.end()


class Keywords:
    """`|`-separated Latin fragments matched as whole words (case-insensitive unless `cased`) and CJK
    fragments matched anywhere; `stop` fragments are phrases that hide a keyword starting inside them.

    Each part is its own pattern without groups: RE2 finds group-free matches with its DFA alone.
    """

    def __init__(self, latin: str = "", cjk: str = "", *, stop: str = "", cased: bool = False) -> None:
        self._latin = compile_re2(latin, ignore_case=not cased) if latin else None
        self._cjk = compile_re2(cjk, ignore_case=not cased) if cjk else None
        self._stop = compile_re2(stop, ignore_case=not cased) if stop else None

    def _latin_spans(self, text: str) -> Iterator[Span]:
        assert self._latin is not None
        for match in self._latin.finditer(text):
            start, end = match.span()
            if end > start and not is_letter(text, start - 1) and not is_letter(text, end):
                yield start, end
            elif not match.group().isalnum():
                # a phrase that began inside a word: a keyword may still start at one of its later words
                retry_from = start + 1
                window = text[retry_from : retry_from + _RETRY_WINDOW]
                for retry in self._latin.finditer(window):
                    a, b = retry.start() + retry_from, retry.end() + retry_from
                    if b > a and not is_letter(text, a - 1) and not is_letter(text, b):
                        yield a, b
                        break

    def finditer(self, text: str) -> Iterator[Span]:
        found: list[Span] = []
        if self._latin is not None:
            found.extend(self._latin_spans(text))
        if self._cjk is not None:
            found.extend(span for span in spans(self._cjk, text))
        if self._stop is not None and found:
            stops = list(spans(self._stop, text))
            if stops:
                found = [span for span in found if not _hidden(span, stops)]
        if self._latin is not None and self._cjk is not None:
            found.sort()
        yield from found

    def search(self, text: str) -> Span | None:
        return next(self.finditer(text), None)

    def sub(self, replacement: str | Callable[[Span], str], text: str) -> str:
        parts: list[str] = []
        last = 0
        for start, end in self.finditer(text):
            if start < last:
                continue
            parts.append(text[last:start])
            parts.append(replacement if isinstance(replacement, str) else replacement((start, end)))
            last = end
        parts.append(text[last:])
        return "".join(parts)


def _hidden(span: Span, stops: list[Span]) -> bool:
    """A keyword starting inside a stop phrase (which starts at or before it) is part of that phrase."""
    index = bisect_right(stops, (span[0], 1 << 62)) - 1
    return index >= 0 and stops[index][0] <= span[0] < stops[index][1]


def alternatives(*fragments: str) -> str:
    return "|".join(fragments)

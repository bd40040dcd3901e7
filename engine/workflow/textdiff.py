"""How much an agent changed a draft: character edit distance and a word diff to show.

`edit_distance` is Levenshtein on characters (insert, delete, substitute; cost 1 each). It uses the
bit-parallel algorithm of Myers (1999) in Hyyrö's formulation on Python integers, so a pair of
3,000-character replies takes milliseconds; `two_row_edit_distance` is the plain two-row dynamic
programme, kept as the readable reference the fast one is tested against.
"""

from __future__ import annotations

import difflib
import re
from typing import Literal

DiffOp = Literal["equal", "insert", "delete"]

# CJK, kana and Hangul characters are diffed one by one (no spaces between words there); other
# words, punctuation marks and runs of whitespace are one token each.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]|\s+")


def _common_affix_stripped(a: str, b: str) -> tuple[str, str]:
    start = 0
    shortest = min(len(a), len(b))
    while start < shortest and a[start] == b[start]:
        start += 1
    end = 0
    while end < shortest - start and a[-1 - end] == b[-1 - end]:
        end += 1
    return a[start : len(a) - end], b[start : len(b) - end]


def edit_distance(a: str, b: str) -> int:
    a, b = _common_affix_stripped(a, b)
    if not a or not b:
        return len(a) + len(b)
    if len(a) > len(b):
        a, b = b, a  # the shorter string is the bit vector
    positions: dict[str, int] = {}
    for index, char in enumerate(a):
        positions[char] = positions.get(char, 0) | (1 << index)
    mask = (1 << len(a)) - 1
    top = 1 << (len(a) - 1)
    plus_vertical, minus_vertical = mask, 0  # column 0 is 0, 1, 2, ...: every step is +1
    score = len(a)
    for char in b:
        equal = positions.get(char, 0)
        x_vertical = equal | minus_vertical
        x_horizontal = (((equal & plus_vertical) + plus_vertical) ^ plus_vertical) | equal
        plus_horizontal = minus_vertical | ~(x_horizontal | plus_vertical)
        minus_horizontal = plus_vertical & x_horizontal
        if plus_horizontal & top:
            score += 1
        elif minus_horizontal & top:
            score -= 1
        # Row 0 is 0, 1, 2, ... as well, so a +1 enters at the bottom bit.
        plus_horizontal = (plus_horizontal << 1) | 1
        minus_horizontal <<= 1
        plus_vertical = (minus_horizontal | ~(x_vertical | plus_horizontal)) & mask
        minus_vertical = plus_horizontal & x_vertical & mask
    return score


def two_row_edit_distance(a: str, b: str) -> int:
    """Levenshtein distance by the textbook DP, keeping two rows (O(len(a)·len(b)) time)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def normalized_edit_distance(a: str, b: str) -> float:
    """Edit distance divided by the longer length: 0 = unchanged, 1 = rewritten entirely."""
    longest = max(len(a), len(b))
    return 0.0 if longest == 0 else edit_distance(a, b) / longest


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


def word_diff(a: str, b: str) -> list[tuple[DiffOp, str]]:
    """Word-level diff from `a` (draft) to `b` (sent): equal and delete pieces rebuild `a`, equal and
    insert pieces rebuild `b`. A replacement is a delete followed by an insert; neighbours of the same
    kind are merged."""
    tokens_a, tokens_b = tokenize(a), tokenize(b)
    # autojunk off: it would treat the frequent whitespace tokens of long texts as junk.
    matcher = difflib.SequenceMatcher(None, tokens_a, tokens_b, autojunk=False)
    ops: list[tuple[DiffOp, str]] = []

    def emit(op: DiffOp, text: str) -> None:
        if not text:
            return
        if ops and ops[-1][0] == op:
            ops[-1] = (op, ops[-1][1] + text)
        else:
            ops.append((op, text))

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            emit("equal", "".join(tokens_a[i1:i2]))
        else:
            emit("delete", "".join(tokens_a[i1:i2]))
            emit("insert", "".join(tokens_b[j1:j2]))
    return ops

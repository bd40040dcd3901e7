"""Length-preserving folding of look-alike characters, so one ASCII pattern sees every variant.

Each code point maps to exactly one code point: offsets into the folded text are offsets into the
original, and violations quote the original text.
"""

from __future__ import annotations

import re

# Japanese writers type the prolonged sound mark as a dash in numbers (090ー1234ー5678); only there.
_LONG_VOWEL_BETWEEN_DIGITS = re.compile(r"(?<=\d)[\u30fc\uff70](?=\d)")


def _build_table() -> dict[int, int]:
    table = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}  # full-width ASCII: ＠ ０ Ａ ．
    table[0x3000] = ord(" ")  # ideographic space
    table[0x00A0] = ord(" ")
    table[0x202F] = ord(" ")
    for dash in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212":  # hyphens and minus
        table[ord(dash)] = ord("-")
    table[0xFF61] = ord(".")  # half-width ideographic full stop
    return table


FOLD_TABLE = _build_table()


def fold(text: str) -> str:
    """`text` with full-width ASCII, odd spaces and dash look-alikes replaced by plain ASCII, same length."""
    return _LONG_VOWEL_BETWEEN_DIGITS.sub("-", text.translate(FOLD_TABLE))

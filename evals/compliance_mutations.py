"""The adversarial set: every blocked reply of `compliance.jsonl`, disguised the ways a seller (or an LLM
steered by a buyer) would try to slip it past the gate.

Each mutation rewrites the part the gate blocks (its first blocking span on the plain text): invisible
characters at every position class, Cyrillic and Greek look-alikes, full-width letters, letters spread
out with spaces or dots, the dot of a link or address spelled out in the 13 interface languages, a
colon or slash glued to a domain, defanged links, a right-to-left override, other digit scripts and
line breaks inside phone numbers. Every mutated reply must still be blocked.

    python -m evals.compliance_mutations      # rewrites evals/datasets/compliance_mutated.jsonl
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.compliance import check_reply

DATASETS = Path(__file__).resolve().parent / "datasets"
SOURCE = DATASETS / "compliance.jsonl"
TARGET = DATASETS / "compliance_mutated.jsonl"

INVISIBLES = {
    "zwsp": "\u200b",
    "zwnj": "\u200c",
    "zwj": "\u200d",
    "wj": "\u2060",
    "bom": "\ufeff",
    "shy": "\u00ad",
    "lrm": "\u200e",
    "vs16": "\ufe0f",
}
HOMOGLYPHS = {
    "a": "\u0430", "c": "\u0441", "e": "\u0435", "o": "\u043e", "p": "\u0440", "x": "\u0445", "y": "\u0443",
    "i": "\u0456", "s": "\u0455", "j": "\u0458", "A": "\u0391", "B": "\u0392", "E": "\u0395", "H": "\u0397",
    "K": "\u039a", "M": "\u039c", "O": "\u039f", "P": "\u03a1", "T": "\u03a4", "X": "\u03a7", "Z": "\u0396",
}  # fmt: skip
# The dot of an address spelled out, one per interface language (bracketed: the unambiguous form).
DOT_WORDS = {
    "en": " dot ", "de": "(punkt)", "fr": "[point]", "it": "(punto)", "es": "[punto]", "ja": "ドット",
    "zh": "点", "pt": "(ponto)", "nl": "[punt]", "pl": "(kropka)", "sv": "[punkt]", "tr": "(nokta)",
    "ar": "(نقطة)",
}  # fmt: skip
DOT_LOOKALIKES = {"ideographic": "\u3002", "fullwidth": "\uff0e", "halfwidth": "\uff61", "leader": "\u2024"}
COLON_PREFIXES = {"colon": "Website:", "fullwidth-colon": "网址：", "slashes": "//", "underscore": "info_"}
DIGIT_SCRIPTS = {"arabic": 0x0660, "persian": 0x06F0, "devanagari": 0x0966, "bengali": 0x09E6,
                 "fullwidth": 0xFF10, "thai": 0x0E50}  # fmt: skip
CONTACT_RULES = ("link", "email", "phone")
KEYWORD_RULES = ("messenger", "off_amazon", "marketing")

Mutation = Callable[[str], str | None]  # the blocked span in, its disguise out (None: does not apply)


def _insert(char: str, position: Callable[[str], int | None]) -> Mutation:
    def mutate(span: str) -> str | None:
        index = position(span)
        return None if index is None else span[:index] + char + span[index:]

    return mutate


def _middle_of_word(span: str) -> int | None:
    for index in range(len(span) // 2, len(span) - 1):
        if span[index - 1].isalnum() and span[index].isalnum():
            return index
    return None


def _beside_separator(span: str) -> int | None:
    for index, char in enumerate(span):
        if char in ".@-/: " and 0 < index < len(span) - 1:
            return index
    return None


def _every_letter(span: str) -> int | None:
    return 1 if len(span) > 2 and span[0].isalnum() and span[1].isalnum() else None


def _homoglyphs(span: str) -> str | None:
    changed = "".join(HOMOGLYPHS.get(c, c) for c in span)
    return changed if changed != span else None


def _fullwidth(span: str) -> str | None:
    changed = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in span)
    return changed if changed != span else None


def _spread(separator: str) -> Mutation:
    def mutate(span: str) -> str | None:
        if " " in span or not span.isascii() or not 3 <= len(span) <= 14 or not span.isalpha():
            return None
        return separator.join(span)

    return mutate


def _cjk_space(span: str) -> str | None:
    if len(span) < 2 or " " in span or not all(_is_cjk(c) for c in span[:2]):
        return None
    return span[:1] + " " + span[1:]


def _is_cjk(char: str) -> bool:
    return 0x3040 <= ord(char) <= 0x9FFF


def _replace_dot(replacement: str) -> Mutation:
    def mutate(span: str) -> str | None:
        head, dot, tail = span.rpartition(".")
        if not dot or not head or not tail[:1].isalpha() or "//" in span:
            return None
        return head + replacement + tail

    return mutate


def _prefix(prefix: str) -> Mutation:
    def mutate(span: str) -> str | None:
        return None if "://" in span or "." not in span else prefix + span

    return mutate


def _defang(span: str) -> str | None:
    if "." not in span:
        return None
    return span.replace("https://", "hxxps://").replace("http://", "hxxp://").replace(".", "[.]")


def _reversed(span: str) -> str | None:
    return "\u202e" + span[::-1] + "\u202c" if "." in span and span.isascii() else None


def _digits(zero: int) -> Mutation:
    def mutate(span: str) -> str | None:
        changed = "".join(chr(zero + int(c)) if c.isascii() and c.isdigit() else c for c in span)
        return changed if changed != span else None

    return mutate


def _line_break(span: str) -> str | None:
    for index in range(len(span) // 2, len(span)):
        if span[index] in " -." and span[index - 1].isdigit():
            return span[:index] + "\n" + span[index + 1 :]
    return None


def mutations(rule: str) -> dict[str, Mutation]:
    """The mutations that apply to a blocked span of `rule`, by name."""
    found: dict[str, Mutation] = {}
    for name, char in INVISIBLES.items():
        found[f"{name}-inside-word"] = _insert(char, _middle_of_word)
        found[f"{name}-beside-separator"] = _insert(char, _beside_separator)
        found[f"{name}-after-first"] = _insert(char, _every_letter)
    if rule in ("length_limit", "html", "placeholder"):
        return found
    found["homoglyphs"] = _homoglyphs
    found["fullwidth"] = _fullwidth
    if rule in KEYWORD_RULES:
        found["spaced-letters"] = _spread(" ")
        found["dotted-letters"] = _spread(".")
        found["cjk-space"] = _cjk_space
    if rule in ("link", "email"):
        for language, word in DOT_WORDS.items():
            found[f"dot-word-{language}"] = _replace_dot(word)
        for name, dot in DOT_LOOKALIKES.items():
            found[f"dot-{name}"] = _replace_dot(dot)
    if rule == "link":
        for name, prefix in COLON_PREFIXES.items():
            found[f"prefix-{name}"] = _prefix(prefix)
        found["defanged"] = _defang
        found["right-to-left-override"] = _reversed
    if rule == "phone":
        for name, zero in DIGIT_SCRIPTS.items():
            found[f"digits-{name}"] = _digits(zero)
        found["line-break"] = _line_break
    return found


def _context(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "buyer_language": row.get("buyer_language"),
        "reply_language": row.get("language") if row.get("buyer_language") else None,
        "allow_list": list(row.get("allow_list") or []),
        "message_type": row.get("message_type"),
    }


def mutated_rows(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every applicable mutation of every blocked row, as rows of the compliance data set format."""
    for row in rows:
        if not row.get("blocked"):
            continue
        verdict = check_reply(row["text"], **_context(row))
        target = next((v for v in verdict.blocking), None)
        if target is None:
            continue
        text = row["text"]
        for name, mutate in mutations(target.rule).items():
            disguised = mutate(target.text)
            if disguised is None or disguised == target.text:
                continue
            mutated = text[: target.start] + disguised + text[target.end :]
            case = {
                "id": f"{row['id']}~{name}",
                "text": mutated,
                "language": row.get("language"),
                "blocked": True,
                "rules": [target.rule],
                "mutation": name,
            }
            for key in ("buyer_language", "allow_list", "message_type"):
                if row.get(key):
                    case[key] = row[key]
            yield case


def read_rows(path: Path = SOURCE) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write(path: Path = TARGET) -> int:
    rows = list(mutated_rows(read_rows()))
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


if __name__ == "__main__":
    print(f"{TARGET}: {write()} rows")

"""E-mail addresses, plain and disguised: `name (at) shop (dot) com`, `[at]`, `＠`, spelled-out at and
dot words in the 13 interface languages (`john アット gmail ドット com`), IDN domains.

Takes normalised text (see `normalize`) and yields `Hit`s in its offsets. Links live in `links`,
phone numbers in `phones`.
"""

from __future__ import annotations

from collections.abc import Iterator

from engine.compliance.links import AT_WORDS, DOT_WORDS, Hit, find_links, host_of, is_amazon_link
from engine.compliance.matcher import compile_re2

__all__ = ["Hit", "find_emails", "find_links", "is_amazon_link", "link_host"]

# Unbounded repetitions: RE2 stays linear, and counted ones would blow up its automaton.
_LOCAL = r"[a-z0-9\x{c0}-\x{24f}][a-z0-9\x{c0}-\x{24f}._%+\-]*"
_LABEL = r"[a-z0-9\x{c0}-\x{24f}-]+"
_AT_ALTS = "|".join(AT_WORDS)
_DOT_ALTS = "|".join(DOT_WORDS)
_BRACKET_AT = rf"\s*[\(\[\{{<]\s*(?:{_AT_ALTS}|@)\s*[\)\]\}}>]\s*"
_BRACKET_DOT = rf"\s*[\(\[\{{<]\s*(?:{_DOT_ALTS}|\.)\s*[\)\]\}}>]\s*"
_CJK_AT = r"\s*(?:アットマーク|アット|艾特)\s*"
_CJK_DOT = r"\s*(?:ドット|点|點)\s*"
_ANY_DOT = rf"(?:\s*\.\s*|{_BRACKET_DOT}|\s+(?:{_DOT_ALTS})\s+|{_CJK_DOT})"
_EMAIL = compile_re2(
    rf"{_LOCAL}(?:\s*@\s*|{_BRACKET_AT}|{_CJK_AT}){_LABEL}(?:{_ANY_DOT}{_LABEL})*{_ANY_DOT}[a-z]{{2,}}",
    ignore_case=True,
)
# "name at shop dot com": a plain at word counts only together with a spelled-out dot.
_EMAIL_SPELLED = compile_re2(
    rf"{_LOCAL}\s+(?:{_AT_ALTS})\s+{_LABEL}(?:\s+(?:{_DOT_ALTS})\s+{_LABEL})+",
    ignore_case=True,
)
_EMAIL_REMOVED = compile_re2(r"\[\s*e-?mail[\s-]*address\s+removed\s*\]", ignore_case=True)


def link_host(link: str) -> str:
    return host_of(link)


def find_emails(text: str) -> Iterator[Hit]:
    for pattern in (_EMAIL, _EMAIL_SPELLED):
        for match in pattern.finditer(text):
            start, end = match.span()
            if end < len(text) and (text[end].isalnum()):
                continue  # the "top-level domain" runs on into a word
            yield Hit("email", start, end)
    for match in _EMAIL_REMOVED.finditer(text):
        yield Hit("email_placeholder", *match.span())

"""Detectors for what a reply says: messengers, off-Amazon sales, marketing, review manipulation,
HTML, placeholders, emoji and thank-you-only replies. Each takes the folded text and yields `Hit`s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from engine.compliance import lexicon
from engine.compliance.contacts import Hit


def _hits(rule: str, pattern: re.Pattern[str], folded: str) -> Iterator[Hit]:
    for match in pattern.finditer(folded):
        if match.end() > match.start():
            yield Hit(rule, match.start(), match.end())


def find_messengers(folded: str) -> Iterator[Hit]:
    yield from _hits("messenger", lexicon.MESSENGER, folded)
    yield from _hits("messenger", lexicon.MESSENGER_CASED, folded)
    yield from _hits("messenger", lexicon.SOCIAL_HANDLE, folded)


def find_off_amazon(folded: str) -> Iterator[Hit]:
    yield from _hits("off_amazon", lexicon.OFF_AMAZON, folded)


def find_marketing(folded: str) -> Iterator[Hit]:
    yield from _hits("marketing", lexicon.MARKETING, folded)


# --- review manipulation -----------------------------------------------------------------------------

_SENTENCE = re.compile(r"[^.!?;\n。！？；]+[.!?;。！？；]*")
_NEAR = 60  # characters between a review word and the word that qualifies it


def _spans(pattern: re.Pattern[str], sentence: str, offset: int) -> list[tuple[int, int]]:
    return [(m.start() + offset, m.end() + offset) for m in pattern.finditer(sentence) if m.end() > m.start()]


def _near(spans: list[tuple[int, int]], anchors: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [s for s in spans if any(s[0] - a[1] <= _NEAR and a[0] - s[1] <= _NEAR for a in anchors)]


def find_review_manipulation(folded: str) -> Iterator[Hit]:
    """Per sentence: a review word qualified by a positive or a removal word, plus a request, a condition
    or an incentive; or an incentive in a sentence that asks for a review. A neutral mention passes."""
    for match in _SENTENCE.finditer(folded):
        sentence, offset = match.group(), match.start()
        reviews = _spans(lexicon.REVIEW_WORDS, sentence, offset)
        if not reviews:
            continue
        positive = _near(_spans(lexicon.POSITIVE, sentence, offset), reviews)
        removal = _near(_spans(lexicon.REMOVAL, sentence, offset), reviews)
        requests = _near(_spans(lexicon.REQUEST, sentence, offset), reviews)
        incentives = _spans(lexicon.INCENTIVE, sentence, offset)
        conditions = _spans(lexicon.CONDITION, sentence, offset)
        pressure = requests or conditions or incentives
        evidence: list[tuple[int, int]] = []
        if (positive or removal) and pressure:
            evidence = reviews + positive + removal + incentives + requests
        elif incentives and requests:
            evidence = reviews + incentives + requests
        if evidence:
            yield Hit("review_manipulation", min(s for s, _ in evidence), max(e for _, e in evidence))


# --- html and placeholders ---------------------------------------------------------------------------

_HTML_TAGS = (
    "a|abbr|b|blockquote|body|br|button|center|code|del|div|em|font|footer|form|h[1-6]|head|header|hr|html|"
    "i|iframe|img|input|ins|label|li|link|mark|meta|nav|ol|p|pre|s|script|section|small|span|strong|style|"
    "sub|sup|table|tbody|td|th|thead|title|tr|u|ul"
)
_HTML_TAG = re.compile(rf"(?<!<)</?(?:{_HTML_TAGS})(?:\s[^<>]*)?/?>(?!>)", re.IGNORECASE)
_HTML_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,9}|#\d{1,7}|#[xX][0-9A-Fa-f]{1,6});")

_PLACEHOLDER = re.compile(
    r"\$?\{\{[^{}\n]{0,60}\}\}"  # {{buyer_name}}
    r"|\{%[^%\n]{0,60}%\}"  # {% if ... %}
    r"|\$?\{[A-Za-z_][\w .\-]{0,40}\}|\{\d?\}"  # {order_id} ${name} {0} {}
    r"|<<[^<>\n]{1,40}>>"  # <<name>>
    r"|%(?:\([A-Za-z_]\w*\))?[sd](?![A-Za-z])"  # %s %(name)s
    r"|%\d\$[sd]"  # %1$s
)
_BRACKETED = re.compile(r"\[([^\[\]\n\d]{2,40})\]|<([A-Za-z][^<>\n]{0,38})>")
_NOT_A_PLACEHOLDER = re.compile(r"\s*(?:at|dot|punkt|point|punto|\.|@|e-?mail[\s-]*address\s+removed)\s*", re.I)


def find_html(folded: str) -> Iterator[Hit]:
    yield from _hits("html", _HTML_TAG, folded)
    yield from _hits("html", _HTML_ENTITY, folded)


def find_placeholders(folded: str) -> Iterator[Hit]:
    for match in _PLACEHOLDER.finditer(folded):
        if match.group().startswith("%") and match.start() > 0 and folded[match.start() - 1].isdigit():
            continue  # "50%s" is not a format string
        yield Hit("placeholder", match.start(), match.end())
    for match in _BRACKETED.finditer(folded):
        content = match.group(1) or match.group(2)
        if _NOT_A_PLACEHOLDER.fullmatch(content) or _HTML_TAG.fullmatch(match.group()):
            continue
        if match.group(2) is not None and (match.start() > 0 and folded[match.start() - 1] == "<"):
            continue  # inner part of <<name>>, already reported
        yield Hit("placeholder", match.start(), match.end())


# --- warnings ----------------------------------------------------------------------------------------

_EMOJI = re.compile(
    "(?:[\U0001f000-\U0001faff\u2600-\u27bf\u231a\u231b\u23e9-\u23fa\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55"
    "\u3030\u303d\u3297\u3299][\ufe0f\u200d\U0001f3fb-\U0001f3ff]*)+"
    r"|(?<![\w:/])[:;=]-?[)(DP](?![\w])|\(\^[_o-]?\^\)|\^\^|m\(_ _\)m"
)


def find_emoji(folded: str) -> Iterator[Hit]:
    yield from _hits("emoji", _EMOJI, folded)


_NOISE = re.compile(r"[\W\d_]+")
_MAX_LEFTOVER_WORDS = 2  # a name or a store name may remain after greetings, thanks and closings


def find_thanks_only(folded: str) -> Iterator[Hit]:
    """The whole reply is a thank-you: removing greetings, thanks, closings (and what follows a closing)
    leaves at most a name."""
    if not lexicon.THANKS.search(folded):
        return
    closing = lexicon.CLOSING.search(folded)
    body = folded[: closing.start()] if closing else folded
    body = lexicon.THANKS.sub(" ", body)
    body = lexicon.GREETING.sub(" ", body)
    leftover = _NOISE.sub(" ", body).split()
    cjk_chars = sum(1 for word in leftover for c in word if ord(c) >= 0x3000)
    if len(leftover) <= _MAX_LEFTOVER_WORDS and cjk_chars <= 8:
        stripped = folded.strip()
        start = folded.index(stripped) if stripped else 0
        yield Hit("thanks_only", start, start + len(stripped))

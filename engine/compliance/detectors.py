"""Detectors for what a reply says: messengers, off-Amazon sales, marketing, review manipulation,
HTML, placeholders, emoji and thank-you-only replies. Each takes normalised text and yields `Hit`s.

Patterns are RE2 (linear time); what Python's look-around said is checked on the match.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from itertools import accumulate

from engine.compliance import lexicon
from engine.compliance.links import Hit
from engine.compliance.matcher import Keywords, Span, compile_re2


def _hits(rule: str, keywords: Keywords, text: str) -> Iterator[Hit]:
    for start, end in keywords.finditer(text):
        yield Hit(rule, start, end)


def find_messengers(text: str) -> Iterator[Hit]:
    yield from _hits("messenger", lexicon.MESSENGER, text)
    yield from _hits("messenger", lexicon.MESSENGER_CASED, text)
    for match in lexicon.SOCIAL_HANDLE.finditer(text):
        start, end = match.span()
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.@/"):
            continue  # an e-mail address or a path, not a handle
        while end > start and text[end - 1] == ".":
            end -= 1
        if end - start >= 3:
            yield Hit("messenger", start, end)


def find_off_amazon(text: str) -> Iterator[Hit]:
    yield from _hits("off_amazon", lexicon.OFF_AMAZON, text)


def find_marketing(text: str) -> Iterator[Hit]:
    yield from _hits("marketing", lexicon.MARKETING, text)


# --- review manipulation -----------------------------------------------------------------------------

_TERMINATORS = frozenset(".!?;\n。！？；")
_SENTENCE_CAP = 1000
_NEAR = 60  # characters between a review word and the word that qualifies it


def _spans(keywords: Keywords, sentence: str, offset: int) -> list[Span]:
    return [(start + offset, end + offset) for start, end in keywords.finditer(sentence)]


def _near(spans: list[Span], anchors: list[Span]) -> list[Span]:
    """The spans within `_NEAR` characters of an anchor (anchors sorted by start, as found)."""
    if not spans or not anchors:
        return []
    starts = [a for a, _ in anchors]
    reach = list(accumulate((b for _, b in anchors), max))  # furthest anchor end among the first k
    near = []
    for start, end in spans:
        index = bisect_right(starts, end + _NEAR) - 1
        if index >= 0 and reach[index] >= start - _NEAR:
            near.append((start, end))
    return near


def find_review_manipulation(text: str) -> Iterator[Hit]:
    """Per sentence: a review word qualified by a positive or a removal word, plus a request, a condition
    or an incentive; or an incentive in a sentence that asks for a review. A neutral mention passes."""
    for start, end in _sentences_with_reviews(text):
        hit = _manipulation(text[start:end], start)
        if hit is not None:
            yield hit


def _sentences_with_reviews(text: str) -> Iterator[Span]:
    """The sentences (capped at `_SENTENCE_CAP` characters each side) that hold a review word."""
    last_end = -1
    for start, _ in lexicon.REVIEW_WORDS.finditer(text):
        if start < last_end:
            continue
        left = start
        while left > 0 and start - left < _SENTENCE_CAP and text[left - 1] not in _TERMINATORS:
            left -= 1
        right = start
        while right < len(text) and right - start < _SENTENCE_CAP and text[right] not in _TERMINATORS:
            right += 1
        while right < len(text) and text[right] in _TERMINATORS and text[right] != "\n":
            right += 1
        last_end = right
        yield left, right


def _manipulation(sentence: str, offset: int) -> Hit | None:
    reviews = _spans(lexicon.REVIEW_WORDS, sentence, offset)
    if not reviews:
        return None
    positive = _near(_spans(lexicon.POSITIVE, sentence, offset), reviews)
    removal = _near(_spans(lexicon.REMOVAL, sentence, offset), reviews)
    requests = _near(_spans(lexicon.REQUEST, sentence, offset), reviews)
    incentives = _spans(lexicon.INCENTIVE, sentence, offset)
    conditions = _spans(lexicon.CONDITION, sentence, offset)
    pressure = requests or conditions or incentives
    evidence: list[Span] = []
    if (positive or removal) and pressure:
        evidence = reviews + positive + removal + incentives + requests
    elif incentives and requests:
        evidence = reviews + incentives + requests
    if not evidence:
        return None
    return Hit("review_manipulation", min(s for s, _ in evidence), max(e for _, e in evidence))


# --- html and placeholders ---------------------------------------------------------------------------

_HTML_TAGS = (
    "a|abbr|b|blockquote|body|br|button|center|code|del|div|em|font|footer|form|h[1-6]|head|header|hr|html|"
    "i|iframe|img|input|ins|label|li|link|mark|meta|nav|ol|p|pre|s|script|section|small|span|strong|style|"
    "sub|sup|table|tbody|td|th|thead|title|tr|u|ul"
)
_HTML_TAG_TEXT = rf"</?(?:{_HTML_TAGS})(?:\s[^<>]*)?/?>"
_HTML_TAG = compile_re2(_HTML_TAG_TEXT, ignore_case=True)
_HTML_TAG_WHOLE = re.compile(_HTML_TAG_TEXT, re.IGNORECASE)  # on a bracketed match of at most 40 characters
_HTML_ENTITY = compile_re2(r"&(?:[A-Za-z][A-Za-z0-9]{1,9}|#\d{1,7}|#[xX][0-9A-Fa-f]{1,6});")

_PLACEHOLDER = compile_re2(
    r"\$?\{\{[^{}\n]{0,60}\}\}"  # {{buyer_name}}
    r"|\{%[^%\n]{0,60}%\}"  # {% if ... %}
    r"|\$?\{[A-Za-z_][\w .\-]{0,40}\}|\{\d?\}"  # {order_id} ${name} {0} {}
    r"|<<[^<>\n]{1,40}>>"  # <<name>>
    r"|%(?:\([A-Za-z_]\w*\))?[sd]"  # %s %(name)s
    r"|%\d\$[sd]"  # %1$s
)
_BRACKETED = compile_re2(r"\[([^\[\]\n\d]{2,40})\]|<([A-Za-z][^<>\n]{0,38})>")
_NOT_A_PLACEHOLDER = re.compile(
    r"\s*(?:at|dot|punkt|point|punto|\.|@|e-?mail[\s-]*address\s+removed)\s*", re.IGNORECASE
)


def find_html(text: str) -> Iterator[Hit]:
    for match in _HTML_TAG.finditer(text):
        start, end = match.span()
        if (start > 0 and text[start - 1] == "<") or text[end : end + 1] == ">":
            continue  # <<name>> is a placeholder
        yield Hit("html", start, end)
    for match in _HTML_ENTITY.finditer(text):
        yield Hit("html", *match.span())


def find_placeholders(text: str) -> Iterator[Hit]:
    for match in _PLACEHOLDER.finditer(text):
        start, end = match.span()
        found = match.group()
        if found.startswith("%"):
            if start > 0 and text[start - 1].isdigit():
                continue  # "50%s" is not a format string
            if end < len(text) and text[end].isascii() and text[end].isalpha():
                continue  # "%software" is a word
        yield Hit("placeholder", start, end)
    for match in _BRACKETED.finditer(text):
        content = match.group(1) or match.group(2)
        if _NOT_A_PLACEHOLDER.fullmatch(content) or _HTML_TAG_WHOLE.fullmatch(match.group()):
            continue
        if match.group(2) is not None and (match.start() > 0 and text[match.start() - 1] == "<"):
            continue  # inner part of <<name>>, already reported
        yield Hit("placeholder", match.start(), match.end())


# --- warnings ----------------------------------------------------------------------------------------

_EMOJI = compile_re2(
    r"(?:[\x{1f000}-\x{1faff}\x{2600}-\x{27bf}\x{231a}\x{231b}\x{23e9}-\x{23fa}\x{2b05}-\x{2b07}"
    r"\x{2b1b}\x{2b1c}\x{2b50}\x{2b55}\x{3030}\x{303d}\x{3297}\x{3299}]"
    r"[\x{fe0f}\x{200d}\x{1f3fb}-\x{1f3ff}]*)+"
)
_EMOTICON = compile_re2(r"[:;=]-?[)(DP]|\(\^[_o-]?\^\)|\^\^|m\(_ _\)m")


def find_emoji(text: str) -> Iterator[Hit]:
    for match in _EMOJI.finditer(text):
        yield Hit("emoji", *match.span())
    for match in _EMOTICON.finditer(text):
        start, end = match.span()
        if match.group()[0] in ":;=":
            if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_:/"):
                continue
            if end < len(text) and (text[end].isalnum() or text[end] == "_"):
                continue
        yield Hit("emoji", start, end)


_NOISE = compile_re2(r"[^\pL]+|[\pN_]+")
_MAX_LEFTOVER_WORDS = 2  # a name or a store name may remain after greetings, thanks and closings


def find_thanks_only(text: str) -> Iterator[Hit]:
    """The whole reply is a thank-you: removing greetings, thanks, closings (and what follows a closing)
    leaves at most a name."""
    if len(text) > 2000 or lexicon.THANKS.search(text) is None:
        return  # a long reply is never only a thank-you
    closing = lexicon.CLOSING.search(text)
    body = text[: closing[0]] if closing else text
    body = lexicon.THANKS.sub(" ", body)
    body = lexicon.GREETING.sub(" ", body)
    leftover = _NOISE.sub(" ", body).split()
    cjk_chars = sum(1 for word in leftover for c in word if ord(c) >= 0x3000)
    if len(leftover) <= _MAX_LEFTOVER_WORDS and cjk_chars <= 8:
        stripped = text.strip()
        start = text.index(stripped) if stripped else 0
        yield Hit("thanks_only", start, start + len(stripped))

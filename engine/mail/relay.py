"""Pure functions over the text of a relay mail: the buyer's words, product, order, name, topic."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any

from engine.mail import markers

_MARKER_LINES_READ = 20  # a relay frame has two to four; more is a flood, not a frame


def _label(raw: str) -> str:
    return raw.strip().rstrip(":：").strip().casefold()


def _label_parts(raw: str) -> list[str]:
    # amazon.ca frames carry both languages: "Begin message / Début du message"
    return [_label(piece) for piece in raw.split("/")] if "/" in raw else [_label(raw)]


@dataclass(frozen=True)
class Framed:
    """The buyer text cut out of Amazon's frame, and the frame left around it."""

    buyer_text: str
    frame: str
    found_markers: bool


def split_frame(text: str) -> Framed:
    """The text between the begin and end marker lines (either template generation, any language).

    Without an end marker the buyer text runs to the end; without a begin marker there is no frame.
    """
    begin: Any = None  # RE2 match objects
    end: Any = None
    matches = markers.MARKER_LINE.finditer(text) if "-----" in text else ()
    for seen, match in enumerate(matches):
        if seen >= _MARKER_LINES_READ:
            break
        labels = _label_parts(match.group("label"))
        if begin is None and any(label in markers.BEGIN_LABELS for label in labels):
            begin = match
        elif begin is not None and any(label in markers.END_LABELS for label in labels):
            end = match
            break
    if begin is None:
        return Framed(buyer_text=text.strip(), frame="", found_markers=False)
    stop = end.start() if end is not None else len(text)
    resume = end.end() if end is not None else len(text)
    buyer = _trim_blank_lines(text[begin.end() : stop])
    return Framed(buyer_text=buyer, frame=text[: begin.start()] + "\n" + text[resume:], found_markers=True)


def _trim_blank_lines(text: str) -> str:
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(line.rstrip() for line in lines)


def has_received_opener(text: str) -> bool:
    head = text.lstrip()[:200].casefold()
    return any(head.startswith(opener) for opener in markers.RECEIVED_OPENERS)


def find_order_id(*texts: str) -> str | None:
    for text in texts:
        match = markers.ORDER_ID.search(text) if "-" in text else None
        if match:
            return match.group(1)
    return None


def find_product(text: str) -> tuple[str | None, str | None]:
    """(asin, product title) from the "1 of <title> [ASIN: ...]" line, else any ASIN mention."""
    if "ASIN" not in text:
        return None, None
    match = markers.PRODUCT_LINE.search(text) or markers.ITEM_LINE.search(text)
    if match:
        return match.group("asin"), match.group("title").strip()
    asin = markers.ASIN.search(text)
    return (asin.group("asin") if asin else None), None


def find_comm_token(text: str) -> str | None:
    match = markers.COMM_TOKEN.search(text) if "commMgrTok" in text else None
    return match.group("token") if match else None


def find_marketplace_ids(text: str) -> list[str]:
    if "mp=" not in text:
        return []
    return [m.group("id") for m in islice(markers.MARKETPLACE_PARAM.finditer(text), 20)]


def name_from_display(display_name: str | None) -> str | None:
    """The buyer's name from `"Alisa - Amazon Marketplace"`; a bare name is not assumed to be the buyer's."""
    if not display_name:
        return None
    cleaned = display_name.strip().strip('"').strip()
    if "amazon" not in cleaned.casefold():  # every pattern names Amazon
        return None
    for pattern in markers.DISPLAY_NAME_PATTERNS:
        match = pattern.match(cleaned)
        if match and match.group("name").strip():
            return match.group("name").strip()
    return None


@dataclass(frozen=True)
class SubjectInfo:
    topic: str | None
    buyer_name: str | None
    is_relay_subject: bool


def read_subject(subject: str) -> SubjectInfo:
    """Topic and buyer name of "<Topic> inquiry from Amazon customer <Name> (Order: ...)" (localised)."""
    core = strip_subject_prefixes(subject)
    if ")" in core or "）" in core:
        core = markers.SUBJECT_ORDER_SUFFIX.sub("", core).strip()
    if "amazon" not in core.casefold():  # every relay subject names Amazon
        return SubjectInfo(None, None, False)
    for pattern in markers.SUBJECT_PATTERNS:
        match = pattern.match(core)
        if match:
            topic = match.group("topic")
            name = match.group("name").strip() or None
            return SubjectInfo(topic.strip() if topic else None, name, True)
    return SubjectInfo(None, None, False)


def strip_subject_prefixes(subject: str) -> str:
    if ":" not in subject:  # every prefix ends in a colon
        return subject.strip()
    return markers.SUBJECT_PREFIX.sub("", subject, count=1).strip()

"""Parsed values made fit for storage: no NUL or control characters, no line breaks in one-line values,
no lone surrogates, and no value longer than the column that holds it.

The limits mirror the columns in `engine.db.models` (a test keeps them in step); they live here so the
parser stays free of database imports.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import re2

MESSAGE_ID_LIMIT = 396  # message.message_id holds 400, and the dedupe key "mid:<id>" must fit in 400 too
NOTIFICATION_TYPE_LIMIT = 80  # message.notification_type
ADDRESS_LIMIT = 320  # message.from_address / to_address, conversation.buyer_address
NAME_LIMIT = 200  # conversation.buyer_name
SUBJECT_LIMIT = 998  # the longest line RFC 5322 allows; subjects are shown on one line
TITLE_LIMIT = 500  # product titles and topics (text columns, shown on one line)
FILENAME_LIMIT = 255
CONTENT_TYPE_LIMIT = 127  # RFC 6838: type and subtype names of at most 127 characters

# Dates outside this range are not believed: a year-9999 Date header is clamped, not trusted.
EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)
LATEST_DATE = datetime(2100, 1, 1, tzinfo=UTC)

_C0_C1 = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
_LINE_BREAKS = ("\n", "\r", "\v", "\f", "\x85", "\u2028", "\u2029")
# One-line values: every control character and line break becomes a blank (so words stay apart).
_ONE_LINE = str.maketrans({**dict.fromkeys(_C0_C1, " "), **dict.fromkeys(map(ord, _LINE_BREAKS), " ")})
# Texts: line breaks and tabs stay (Unicode line separators become newlines), other controls go.
_MULTI_LINE = str.maketrans(
    {
        **dict.fromkeys(_C0_C1, None),
        ord("\n"): "\n",
        ord("\t"): "\t",
        0x85: "\n",
        0x2028: "\n",
        0x2029: "\n\n",
    }
)


# Whether a text holds anything `_MULTI_LINE` changes (one linear search instead of a slow translation).
_NEEDS_CLEANING = re2.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\x{2028}\x{2029}]")


def _valid_unicode(value: str) -> str:
    """Lone surrogates (undecodable bytes smuggled through) cannot be stored as UTF-8: replaced."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16: lone surrogates become U+FFFD, in C.
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def one_line(value: str | None, limit: int) -> str | None:
    """A header-like value on one line, blanks squeezed, at most `limit` characters; None stays None."""
    if value is None:
        return None
    cleaned = " ".join(_valid_unicode(value[: limit * 4]).translate(_ONE_LINE).split())
    return cleaned[:limit].rstrip()


def text_block(value: str) -> str:
    """A multi-line text (a body): NUL and other control characters removed, line breaks normalised."""
    value = _valid_unicode(value.replace("\r\n", "\n").replace("\r", "\n"))
    return value.translate(_MULTI_LINE) if _NEEDS_CLEANING.search(value) else value


def identifier(value: str | None, limit: int = MESSAGE_ID_LIMIT) -> str | None:
    """An identifier (Message-ID, token) cleaned of blanks and controls. One longer than `limit` keeps its
    beginning and a digest of the whole, so two different long identifiers never collide."""
    if value is None:
        return None
    cleaned = "".join(_valid_unicode(value).translate(_ONE_LINE).split())
    if not cleaned:
        return None
    if len(cleaned) <= limit:
        return cleaned
    digest = hashlib.sha256(cleaned.encode("utf-8")).hexdigest()[:16]
    return f"{cleaned[: limit - 17]}~{digest}"


def clamp_date(when: datetime) -> tuple[datetime, bool]:
    """`when` within [EARLIEST_DATE, LATEST_DATE]; True when it had to be moved."""
    if when < EARLIEST_DATE:
        return EARLIEST_DATE, True
    if when > LATEST_DATE:
        return LATEST_DATE, True
    return when, False

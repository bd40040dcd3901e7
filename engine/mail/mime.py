"""The MIME structure of a mail, read with limits: header block, iterative part walk, size caps.

The standard library's full parser recurses once per nesting level and checks every line against every
open boundary, so a thousand nested multiparts cost a `RecursionError` and quadratic time. Here the
library parses header blocks only; bodies are split on their boundary lines by a loop with an explicit
stack, no deeper than `MailLimits.max_depth` and no more than `MailLimits.max_parts` parts. What lies
beyond a limit is not read (the raw bytes are kept by the caller) and a warning says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from email.parser import Parser
from email.policy import compat32
from itertools import pairwise
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.settings import Settings

__all__ = ["MailLimits", "MimeLeaf", "MimeWalk", "load_message", "raw_body", "split_head", "walk"]


@dataclass(frozen=True)
class MailLimits:
    """How much of one mail the parser reads; everything beyond is left to the raw bytes."""

    max_depth: int = 30  # multipart nesting levels (real mail rarely passes 5)
    max_parts: int = 200  # MIME parts in one mail (a buyer's mail with photos has a handful)
    max_header_bytes: int = 512 * 1024  # the header block
    max_text_chars: int = 300_000  # decoded text of all text parts together, before any pattern runs
    max_markup_chars: int = 1_000_000  # HTML markup handed to the HTML parser
    max_mail_bytes: int = 64 * 1024 * 1024  # bytes of one mail that are read at all

    @classmethod
    def from_settings(cls, settings: Settings) -> MailLimits:
        """The limits the settings ask for (`REPLYDESK_MAIL_MAX_DEPTH`, `REPLYDESK_MAIL_MAX_PARTS`)."""
        return cls(max_depth=settings.mail_max_depth, max_parts=settings.mail_max_parts)


DEFAULT_LIMITS = MailLimits()


def split_head(data: str) -> tuple[str, str]:
    """(header block, body) at the first blank line, whatever the line endings; the body may be empty."""
    found = [at for at in (data.find("\n\n"), data.find("\n\r\n")) if at >= 0]
    if not found:
        return data, ""
    at = min(found)
    skip = 2 if data.startswith("\n\n", at) else 3
    return data[: at + 1], data[at + skip :]


def load_message(text: str, limits: MailLimits = DEFAULT_LIMITS) -> tuple[Message, list[str]]:
    """A message with its headers parsed and its body as the payload string (not split into parts).

    `text` is the raw mail decoded as ASCII with surrogate escapes, as the standard library does it.
    """
    warnings: list[str] = []
    head, body = split_head(text)
    if len(head) > limits.max_header_bytes:
        warnings.append(f"Header block longer than {limits.max_header_bytes} bytes: the rest was not read.")
        head = head[: limits.max_header_bytes].rpartition("\n")[0] + "\n"
    msg = Parser(policy=compat32).parsestr(head, headersonly=True)
    # A line in the header block that is no header starts the body (as the standard parser does it).
    leftover = raw_body(msg)
    if leftover:
        body = leftover + ("\n" + body if body else "")
    msg.set_payload(body)
    return msg, warnings


@dataclass(frozen=True)
class MimeLeaf:
    part: Message
    depth: int
    is_root: bool
    unsplit_multipart: bool = False  # a multipart without a usable boundary: read as plain text


@dataclass
class MimeWalk:
    leaves: list[MimeLeaf] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def raw_body(part: Message) -> str:
    """The body exactly as `load_message` set it (ASCII with surrogate escapes for 8-bit bytes).

    `get_payload()` without decoding would turn the 8-bit bytes of a part without a charset into U+FFFD.
    """
    payload = getattr(part, "_payload", "")
    return payload if isinstance(payload, str) else ""


def _boundary(part: Message) -> str | None:
    try:
        value = part.get_boundary()
    except (ValueError, LookupError, TypeError, AttributeError):
        return None
    if not value or len(value) > 200:  # RFC 2046 allows 70 characters; a longer one is not worth the search
        return None
    return value


def split_parts(body: str, boundary: str, max_parts: int) -> tuple[list[str], bool]:
    """The parts between `--boundary` lines (a delimiter must start a line); True when parts were left out.

    One pass with `str.find`: linear in the body, whatever the number of parts.
    """
    delimiter = "--" + boundary
    bounds: list[tuple[int, int]] = []  # (delimiter line start, content start)
    position = 0
    closed = False
    while len(bounds) <= max_parts + 1:
        at = body.find(delimiter, position)
        if at < 0:
            break
        position = at + len(delimiter)
        if at > 0 and body[at - 1] not in "\r\n":
            continue
        line_end = body.find("\n", position)
        line_end = len(body) if line_end < 0 else line_end + 1
        rest = body[position:line_end].strip()
        closed = rest.startswith("--")
        if rest and not closed:  # "--boundaryX": a longer boundary that only starts like ours
            continue
        bounds.append((at, line_end))
        position = line_end
        if closed:
            break
    parts = [body[start : _before_line_break(body, next_at)] for (_, start), (next_at, _) in pairwise(bounds)]
    if bounds and not closed:  # an unterminated last part runs to the end
        parts.append(body[bounds[-1][1] :])
    return parts[:max_parts], len(parts) > max_parts


def _before_line_break(body: str, at: int) -> int:
    """The line break before a delimiter belongs to the delimiter."""
    if body.startswith("\r\n", at - 2):
        return at - 2
    return at - 1 if at > 0 and body[at - 1] in "\r\n" else at


def walk(msg: Message, limits: MailLimits = DEFAULT_LIMITS) -> MimeWalk:
    """Every leaf part in document order (depth first), without recursion and within the limits.

    Multipart bodies are split into sub-messages; a `message/rfc822` part stays a leaf (its payload is the
    enclosed mail as text), since enclosed mails are not opened for body text.
    """
    found = MimeWalk()
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    depth_noted = parts_noted = False
    while stack:
        part, depth = stack.pop()
        seen += 1
        if part.get_content_maintype() != "multipart":
            found.leaves.append(MimeLeaf(part, depth, part is msg))
            continue
        body = raw_body(part)
        boundary = _boundary(part)
        if boundary is None:
            found.leaves.append(MimeLeaf(part, depth, part is msg, unsplit_multipart=True))
            continue
        if depth >= limits.max_depth:
            if not depth_noted:
                found.warnings.append(f"MIME parts nested deeper than {limits.max_depth} levels were not read.")
                depth_noted = True
            continue
        budget = max(0, limits.max_parts - seen - len(stack))
        texts, cut = split_parts(body, boundary, budget)
        if cut and not parts_noted:
            found.warnings.append(f"Only the first {limits.max_parts} MIME parts were read.")
            parts_noted = True
        children = [load_message(text, limits)[0] for text in texts]
        stack.extend((child, depth + 1) for child in reversed(children))
    return found

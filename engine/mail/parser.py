"""Relay-mail parser: raw bytes in, `ParsedMail` out. Pure; no I/O, no database.

Reads both of Amazon's template generations in every language in `markers`, HTML mails (buyer text
in `<pre>`), Seller Central notices and bounces. It never loses data: what it cannot read it leaves
out of the fields, and the caller stores the raw bytes regardless. `parse_mail` raises only
`MailParseError`: when the bytes are not a mail at all, and when reading them failed for any other
reason (the message says which), so one bad mail never stops the others.

Hostile input is bounded (see `MailLimits`): the structure is walked without recursion, texts are cut
before any pattern runs, every pattern is RE2 and HTML goes through a real parser. Every value is fit
for its column (`sanitize`). The stored body text is capped at `BODY_LIMIT` characters, with
`TRUNCATION_NOTE` appended so an agent knows the rest is in the raw mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from itertools import islice

import re2

from engine.errors import MailParseError
from engine.mail import relay
from engine.mail import sanitize as clean
from engine.mail.authenticity import SenderFacts, suspicion_reasons
from engine.mail.classify import KindSignals, classify
from engine.mail.decode import (
    MailParts,
    collect_parts,
    decode_bytes,
    decode_header_value,
    header_text,
    html_to_text,
    pre_blocks,
    raw_header,
)
from engine.mail.kinds import MailKind
from engine.mail.markers import NOTICE_LOCAL_PARTS, is_amazon_host, is_relay_host
from engine.mail.mime import DEFAULT_LIMITS, MailLimits, load_message
from engine.taxonomy import load_taxonomy

__all__ = [
    "BODY_LIMIT",
    "TRUNCATION_NOTE",
    "Attachment",
    "MailKind",
    "MailLimits",
    "ParsedMail",
    "parse_mail",
    "thread_key",
    "to_cli_record",
]

BODY_LIMIT = 100_000
TRUNCATION_NOTE = "\n\n[Text cut at 100000 characters; the complete mail is kept as received.]"

# Kinds whose mail points back at one of our own replies.
_REFERS_TO_OUR_REPLY = frozenset({MailKind.DELIVERY_FAILURE, MailKind.OPTOUT, MailKind.SENT_COPY})
_KNOWN_HEADERS = frozenset(
    {
        "from", "to", "cc", "subject", "date", "message-id", "received", "return-path", "reply-to",
        "content-type", "mime-version", "delivered-to", "x-space-notification-type", "x-marketplace-id",
        "in-reply-to", "references", "sender",
    }
)  # fmt: skip
# Matched by the standard `re` on at most 1,000 bytes (linear: one class run, then a fixed tail).
_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
_MSGID = re2.compile(r"<([^<>\s]+)>")
_ADDRESS_IN_BRACKETS = re2.compile(r"<([^<>\s@]{1,64}@[^<>\s@]{1,255})>")
_ORIGINAL_MSGID = re2.compile(r"(?im)^[ \t]*(?:Original-)?Message-ID:[ \t]*<([^<>\s]+)>")
_ADDRESS_HEADER_LIMIT = 4_000  # characters of an address header handed to the address parser
_MAX_ADDRESSES = 50
_MAX_REFERENCES = 100


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int  # decoded bytes


@dataclass(frozen=True)
class ParsedMail:
    kind: MailKind
    message_id: str | None
    subject: str
    from_address: str
    from_name: str | None
    to_addresses: tuple[str, ...]
    buyer_address: str | None
    buyer_name: str | None
    marketplace: str | None
    order_id: str | None
    asin: str | None
    product_title: str | None
    topic: str | None
    body: str
    comm_token: str | None
    received_at: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    notification_type: str | None
    related_message_id: str | None
    attachments: tuple[Attachment, ...]
    # Signs that the mail is not what it claims (forged sender, failed authentication), for a human.
    suspicious_reasons: tuple[str, ...] = ()
    # What the parser left unread or changed (limits reached, text cut, a date clamped).
    parse_warnings: tuple[str, ...] = ()

    @property
    def suspicious(self) -> bool:
        return bool(self.suspicious_reasons)

    @property
    def dedupe_key(self) -> str:
        """The storage dedupe key: `mid:<Message-ID>`, else `tok:<commMgrTok>`, else "" (caller hashes bytes)."""
        if self.message_id:
            return f"mid:{self.message_id}"
        if self.comm_token:
            return f"tok:{self.comm_token}"
        return ""


def thread_key(buyer_address: str | None, order_id: str | None) -> str:
    """Conversation key: the buyer alias (suffix kept, case folded) and the order id when there is one."""
    alias = buyer_address.strip().lower() if buyer_address else ""
    if order_id:
        return f"{alias}|{order_id}"
    return alias


def to_cli_record(parsed: ParsedMail, source: str) -> dict[str, object]:
    """One `replydesk parse-email` output record."""
    received = parsed.received_at
    return {
        "source": source,
        "kind": parsed.kind.value,
        "marketplace": parsed.marketplace,
        "buyer_address": parsed.buyer_address,
        "order_id": parsed.order_id,
        "asin": parsed.asin,
        "product_title": parsed.product_title,
        "topic": parsed.topic,
        "subject": parsed.subject,
        "body": parsed.body,
        "message_id": parsed.message_id,
        "comm_token": parsed.comm_token,
        "received_at": received.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if received else None,
    }


# ---- parsing ------------------------------------------------------------------------------------


def _strip_mbox_from_line(raw: bytes) -> bytes:
    if raw.startswith(b"From "):
        newline = raw.find(b"\n")
        return raw[newline + 1 :] if newline >= 0 else b""
    return raw


def _looks_like_header(line: bytes) -> bool:
    return bool(_HEADER_LINE.match(line[:1000]))  # a header name is never longer than a line may be


def _skip_leading_junk(data: bytes, max_lines: int = 3) -> bytes:
    """Drop a few damaged lines before the first header line, so one bad line does not cost every header."""
    lines = data[:64_000].split(b"\n", max_lines + 1)
    offset = 0
    for skip in range(min(max_lines, len(lines) - 1) + 1):
        if _looks_like_header(lines[skip]):
            return data[offset:]
        if not lines[skip].strip():
            break  # a blank line ends the (missing) header block
        offset += len(lines[skip]) + 1
    return data


def _header_end(data: bytes) -> int:
    found = [at for at in (data.find(b"\n\n"), data.find(b"\n\r\n")) if at >= 0]
    return min(found) if found else len(data)


def _load_message(raw: bytes, limits: MailLimits) -> tuple[Message, list[str]]:
    warnings: list[str] = []
    data = _strip_mbox_from_line(raw).lstrip(b"\r\n")
    if not data.strip():
        raise MailParseError("The mail is empty: there are no headers and no body to read.")
    data = _skip_leading_junk(data)
    if not _looks_like_header(data):
        raise MailParseError(
            'These bytes are not a mail: they do not start with a header block ("Name: value" lines). '
            "Check that the file is an .eml, mbox or Maildir message."
        )
    if len(data) > limits.max_mail_bytes:
        warnings.append(f"The mail is larger than {limits.max_mail_bytes} bytes: only its beginning was read.")
        data = data[: limits.max_mail_bytes]
    head_end = _header_end(data)
    if b"\x00" in data[:head_end]:  # NUL bytes cannot be stored and mean nothing in headers
        data = data[:head_end].replace(b"\x00", b"") + data[head_end:]
        warnings.append("NUL bytes in the header block were removed.")
    msg, load_warnings = load_message(data.decode("ascii", "surrogateescape"), limits)
    if not any(key.lower() in _KNOWN_HEADERS for key in msg):
        raise MailParseError(
            "These bytes are not a mail: none of the usual headers (From, To, Subject, Date, Message-ID) "
            "is present. Check that the file is an .eml, mbox or Maildir message."
        )
    return msg, warnings + load_warnings


def _parse_addresses(value: str) -> list[tuple[str, str]]:
    """`getaddresses`, or the bracketed addresses when a hostile value defeats it (nested comments)."""
    try:
        return getaddresses([value])
    except (RecursionError, ValueError, IndexError, TypeError):
        return [("", m.group(1)) for m in _ADDRESS_IN_BRACKETS.finditer(value)]


def _addresses(msg: Message, name: str) -> list[tuple[str | None, str]]:
    pairs: list[tuple[str | None, str]] = []
    for raw in raw_header(msg, name):
        value = decode_bytes(raw[:_ADDRESS_HEADER_LIMIT].encode("utf-8", "surrogateescape"), None)
        for display, address in _parse_addresses(value):
            address = clean.one_line(address, clean.ADDRESS_LIMIT * 2) or ""
            if not address or len(address) > clean.ADDRESS_LIMIT:
                continue  # no address, or one longer than any real address can be
            decoded = decode_header_value(display).strip().strip('"').strip() if display else ""
            pairs.append((clean.one_line(decoded, clean.NAME_LIMIT) or None, address))
            if len(pairs) >= _MAX_ADDRESSES:
                return pairs
    return pairs


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    match = _MSGID.search(value)
    if match:
        return clean.identifier(match.group(1))
    token = value.strip().split()
    return clean.identifier(token[0].strip("<>")) if token else None


def _references(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    found = [m.group(1) for m in islice(_MSGID.finditer(value), _MAX_REFERENCES)]
    found = found or [v.strip("<>") for v in value.split()[:_MAX_REFERENCES]]
    ids = (clean.identifier(v) for v in found)
    return tuple(i for i in ids if i)


def _split_address(address: str) -> tuple[str, str]:
    local, _, host = address.rpartition("@")
    return local, host


def _is_buyer_alias(address: str) -> bool:
    local, host = _split_address(address)
    if not local or len(local) > 64:
        return False
    return is_relay_host(host) and local.split("+")[0].lower() not in NOTICE_LOCAL_PARTS


def _parse_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value.strip()[:200])
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except (OverflowError, ValueError):  # year 9999 with a negative zone, year 1 with a positive one
        return datetime.max.replace(tzinfo=UTC) if when.year > 2000 else datetime.min.replace(tzinfo=UTC)


def _received_at(msg: Message) -> tuple[datetime | None, bool]:
    """The mail's date (Date, else the newest Received hop) and True when it had to be clamped."""
    candidates = [header_text(msg, "Date")]
    received = raw_header(msg, "Received")
    if received:  # the topmost Received header is the newest hop
        candidates.append(decode_header_value(received[0]).rpartition(";")[2])
    for candidate in candidates:
        if candidate and candidate.strip() and (when := _parse_date(candidate)) is not None:
            return clean.clamp_date(when)
    return None, False


def _readable_text(parts: MailParts, html_text: str) -> str:
    plain = "\n".join(t for t in parts.plain if t.strip())
    return plain if plain.strip() else html_text


def _buyer_frame(parts: MailParts, readable: str, html_text: str) -> relay.Framed:
    """The buyer text: between the markers of the plain part, else the HTML `<pre>` block."""
    framed = relay.split_frame(readable)
    if framed.found_markers:
        return framed
    for markup in parts.html:
        blocks = [b for b in pre_blocks(markup) if b.strip()]
        if blocks:
            inner = relay.split_frame(blocks[0])
            return relay.Framed(inner.buyer_text, html_text + "\n" + inner.frame, True)
    return framed


def _marketplace(buyer_address: str | None, msg: Message, search_text: str, from_host: str) -> str | None:
    taxonomy = load_taxonomy()
    if buyer_address:
        hit = taxonomy.marketplace_by_host(_split_address(buyer_address)[1])
        if hit:
            return hit.code
    header_id = header_text(msg, "X-Marketplace-ID")
    if header_id:
        hit = taxonomy.marketplace_by_id(header_id.strip()[:40])
        if hit:
            return hit.code
    for marketplace_id in relay.find_marketplace_ids(search_text)[:20]:
        hit = taxonomy.marketplace_by_id(marketplace_id)
        if hit:
            return hit.code
    if from_host and is_amazon_host(from_host):
        hit = taxonomy.marketplace_by_host(from_host)
        if hit:
            return hit.code
    return None


def _related_message_id(in_reply_to: str | None, parts: MailParts, body: str) -> str | None:
    if in_reply_to:
        return in_reply_to
    for enclosed in parts.enclosed_headers:
        found = _message_id(header_text(enclosed, "Message-ID"))
        if found:
            return found
    for text in (*parts.report_texts, body):
        match = _ORIGINAL_MSGID.search(text) if "message-id" in text.lower() else None
        if match:
            return clean.identifier(match.group(1))
    return None


def _first_name(display_names: list[str | None]) -> str | None:
    return next((n for n in map(relay.name_from_display, display_names) if n), None)


def _runs_to_the_end(body: str, readable: str) -> bool:
    """Whether the body reaches the end of the text read (so a cut text also cut the body)."""
    tail = "".join(body[-1000:].split())[-200:]  # blanks aside: the frame trims line ends
    return bool(tail) and "".join(readable[-4000:].split()).endswith(tail)


def _cap(text: str, cut: bool) -> str:
    """The stored body: at most `BODY_LIMIT` characters, with the note when anything was left out."""
    text = clean.text_block(text)
    if len(text) > BODY_LIMIT or cut:
        return text[:BODY_LIMIT] + TRUNCATION_NOTE
    return text


def parse_mail(raw: bytes, limits: MailLimits = DEFAULT_LIMITS) -> ParsedMail:
    """Parse one raw mail. Raises only `MailParseError`, whose message says why (the caller keeps the bytes).

    `MemoryError` is the exception: it says more about the process than about the mail, and propagates.
    """
    try:
        return _parse(raw, limits)
    except (MailParseError, MemoryError):
        raise
    except Exception as exc:  # a mail no rule foresaw: kept unparsed, never a crash of the caller's loop
        detail = clean.one_line(str(exc), 300) or "no detail"
        raise MailParseError(
            f"The parser could not read this mail ({type(exc).__name__}: {detail}). Its raw bytes are kept "
            "as received; open them to read it."
        ) from exc


def _parse(raw: bytes, limits: MailLimits) -> ParsedMail:
    msg, warnings = _load_message(raw, limits)
    subject = clean.one_line(header_text(msg, "Subject") or "", clean.SUBJECT_LIMIT) or ""
    senders = _addresses(msg, "From")
    from_name, from_address = senders[0] if senders else (None, "")
    reply_to = _addresses(msg, "Reply-To")
    buyer = next(((n, a) for n, a in (*reply_to, *senders) if _is_buyer_alias(a)), None)
    buyer_address = buyer[1] if buyer else None

    parts = collect_parts(msg, limits)
    warnings += parts.warnings
    html_text = "\n".join(html_to_text(h) for h in parts.html)
    if len(html_text) > limits.max_text_chars:
        html_text, parts.text_cut = html_text[: limits.max_text_chars], True
    readable = _readable_text(parts, html_text)
    framed = _buyer_frame(parts, readable, html_text) if buyer_address else relay.Framed(readable, readable, False)
    subject_info = relay.read_subject(subject)
    notification_type = clean.one_line(header_text(msg, "X-Space-Notification-Type"), clean.NOTIFICATION_TYPE_LIMIT)
    from_local, from_host = _split_address(from_address)
    kind = classify(
        KindSignals(
            notification_type=notification_type or None,
            sender_local=from_local.lower(),
            sender_is_relay_alias=buyer_address is not None,
            content_type=msg.get_content_type(),
            report_type=_report_type(msg),
            subject=subject,
            notice_text=framed.frame if buyer_address else readable,
            relay_markers_found=framed.found_markers or relay.has_received_opener(readable),
            relay_subject=subject_info.is_relay_subject,
        )
    )
    body = framed.buyer_text if kind is MailKind.BUYER_MESSAGE else readable.strip()
    html_raw = "\n".join(parts.html)
    frame_text = framed.frame if kind is MailKind.BUYER_MESSAGE else readable
    enclosed_subjects = [(header_text(h, "Subject") or "")[:2000] for h in parts.enclosed_headers[:10]]
    asin, product_title = relay.find_product(frame_text)
    if asin is None:
        asin, product_title = relay.find_product(readable + "\n" + html_text)
    in_reply_to = _message_id(header_text(msg, "In-Reply-To"))
    display_names = [n for n, a in (*reply_to, *senders) if a == buyer_address] if buyer_address else []
    received_at, date_clamped = _received_at(msg)
    if date_clamped:
        warnings.append("The date of the mail was out of range and was clamped.")

    return ParsedMail(
        kind=kind,
        message_id=_message_id(header_text(msg, "Message-ID")),
        subject=subject,
        from_address=from_address,
        from_name=from_name,
        to_addresses=tuple(a for _, a in _addresses(msg, "To")),
        buyer_address=buyer_address,
        buyer_name=clean.one_line(_first_name(display_names) or subject_info.buyer_name, clean.NAME_LIMIT),
        marketplace=_marketplace(buyer_address, msg, readable + "\n" + html_raw, from_host),
        order_id=relay.find_order_id(subject, frame_text, body, html_raw, *enclosed_subjects),
        asin=asin,
        product_title=clean.one_line(product_title, clean.TITLE_LIMIT),
        topic=clean.one_line(subject_info.topic, clean.TITLE_LIMIT),
        body=_cap(body, parts.text_cut and _runs_to_the_end(body, readable)),
        comm_token=relay.find_comm_token(frame_text) or relay.find_comm_token(html_raw),
        received_at=received_at,
        in_reply_to=in_reply_to,
        references=_references(header_text(msg, "References")),
        notification_type=notification_type or None,
        related_message_id=(
            _related_message_id(in_reply_to, parts, readable) if kind in _REFERS_TO_OUR_REPLY else None
        ),
        attachments=tuple(
            Attachment(
                clean.one_line(p.filename, clean.FILENAME_LIMIT),
                clean.one_line(p.content_type, clean.CONTENT_TYPE_LIMIT) or "application/octet-stream",
                p.size,
            )
            for p in parts.attachments
        ),
        suspicious_reasons=suspicion_reasons(
            SenderFacts(
                from_address=from_address,
                from_name=from_name,
                from_count=len(raw_header(msg, "From")),
                reply_to=tuple(a for _, a in reply_to),
                reply_to_count=len(raw_header(msg, "Reply-To")),
                sender_count=len(raw_header(msg, "Sender")),
                authentication_results=tuple(map(decode_header_value, raw_header(msg, "Authentication-Results")[:20])),
                notification_type=notification_type or None,
                date_out_of_range=date_clamped,
            )
        ),
        parse_warnings=tuple(warnings),
    )


def _report_type(msg: Message) -> str | None:
    if msg.get_content_type() != "multipart/report":
        return None
    value = msg.get_param("report-type")
    return value if isinstance(value, str) else None

"""Relay-mail parser: raw bytes in, `ParsedMail` out. Pure; no I/O, no database.

Reads both of Amazon's template generations in every language in `markers`, HTML mails (buyer text
in `<pre>`), Seller Central notices and bounces. It never loses data: what it cannot read it leaves
out of the fields, and the caller stores the raw bytes regardless. Only bytes that are not a mail at
all raise `MailParseError`. The stored body text is capped at `BODY_LIMIT` characters, with
`TRUNCATION_NOTE` appended so an agent knows the rest is in the raw mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from engine.errors import MailParseError
from engine.mail import relay
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
from engine.mail.markers import AMAZON_HOST, NOTICE_LOCAL_PARTS, RELAY_HOST
from engine.taxonomy import load_taxonomy

__all__ = [
    "BODY_LIMIT",
    "TRUNCATION_NOTE",
    "Attachment",
    "MailKind",
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
_HEADER_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")
_MSGID = re.compile(r"<([^<>\s]+)>")
_AUTH_FAIL = re.compile(r"\b(?:dkim|spf|dmarc)\s*=\s*(?:fail|softfail|permerror)\b", re.IGNORECASE)
_ORIGINAL_MSGID = re.compile(r"^\s*(?:Original-)?Message-ID:\s*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)


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
    suspicious: bool

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


def _skip_leading_junk(data: bytes, max_lines: int = 3) -> bytes:
    """Drop a few damaged lines before the first header line, so one bad line does not cost every header."""
    lines = data.split(b"\n", max_lines + 1)
    for skip in range(min(max_lines, len(lines) - 1) + 1):
        if _HEADER_LINE.match(lines[skip]):
            return data if skip == 0 else b"\n".join(lines[skip:])
        if not lines[skip].strip():
            break  # a blank line ends the (missing) header block
    return data


def _load_message(raw: bytes) -> Message:
    data = _strip_mbox_from_line(raw).lstrip(b"\r\n")
    if not data.strip():
        raise MailParseError("The mail is empty: there are no headers and no body to read.")
    data = _skip_leading_junk(data)
    head = re.split(rb"\r?\n\r?\n", data[:65536], maxsplit=1)[0]
    if not _HEADER_LINE.match(data) or b"\x00" in head:
        raise MailParseError(
            'These bytes are not a mail: they do not start with a header block ("Name: value" lines). '
            "Check that the file is an .eml, mbox or Maildir message."
        )
    msg = BytesParser(policy=compat32).parsebytes(data)
    if not any(key.lower() in _KNOWN_HEADERS for key in msg):
        raise MailParseError(
            "These bytes are not a mail: none of the usual headers (From, To, Subject, Date, Message-ID) "
            "is present. Check that the file is an .eml, mbox or Maildir message."
        )
    return msg


def _addresses(msg: Message, name: str) -> list[tuple[str | None, str]]:
    values = [decode_bytes(v.encode("utf-8", "surrogateescape"), None) for v in raw_header(msg, name)]
    pairs = []
    for display, address in getaddresses(values):
        if not address:
            continue
        decoded = decode_header_value(display).strip().strip('"').strip() if display else ""
        pairs.append((decoded or None, address.strip()))
    return pairs


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    match = _MSGID.search(value)
    if match:
        return match.group(1)
    token = value.strip().split()
    return token[0].strip("<>") if token else None


def _references(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    found = _MSGID.findall(value)
    return tuple(found) if found else tuple(v.strip("<>") for v in value.split())


def _split_address(address: str) -> tuple[str, str]:
    local, _, host = address.rpartition("@")
    return local, host


def _is_buyer_alias(address: str) -> bool:
    local, host = _split_address(address)
    return bool(local) and bool(RELAY_HOST.search(host)) and local.split("+")[0].lower() not in NOTICE_LOCAL_PARTS


def _received_at(msg: Message) -> datetime | None:
    candidates = [header_text(msg, "Date")]
    received = raw_header(msg, "Received")
    if received:  # the topmost Received header is the newest hop
        candidates.append(decode_header_value(received[0]).rpartition(";")[2])
    for candidate in candidates:
        if not candidate or not candidate.strip():
            continue
        try:
            when = parsedate_to_datetime(candidate.strip())
        except (TypeError, ValueError, IndexError):
            continue
        if when is None:
            continue
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return None


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
        hit = taxonomy.marketplace_by_id(header_id.strip())
        if hit:
            return hit.code
    for marketplace_id in relay.find_marketplace_ids(search_text):
        hit = taxonomy.marketplace_by_id(marketplace_id)
        if hit:
            return hit.code
    if from_host and AMAZON_HOST.search(from_host):
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
        match = _ORIGINAL_MSGID.search(text)
        if match:
            return match.group(1)
    return None


def _first_name(display_names: list[str | None]) -> str | None:
    return next((n for n in map(relay.name_from_display, display_names) if n), None)


def _cap(text: str) -> str:
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + TRUNCATION_NOTE


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one raw mail. Raises `MailParseError` only when the bytes are not a mail at all."""
    msg = _load_message(raw)
    subject = header_text(msg, "Subject") or ""
    senders = _addresses(msg, "From")
    from_name, from_address = senders[0] if senders else (None, "")
    reply_to = _addresses(msg, "Reply-To")
    buyer = next(((n, a) for n, a in (*reply_to, *senders) if _is_buyer_alias(a)), None)
    buyer_address = buyer[1] if buyer else None

    parts = collect_parts(msg)
    html_text = "\n".join(html_to_text(h) for h in parts.html)
    readable = _readable_text(parts, html_text)
    framed = _buyer_frame(parts, readable, html_text) if buyer_address else relay.Framed(readable, readable, False)
    subject_info = relay.read_subject(subject)
    notification_type = (header_text(msg, "X-Space-Notification-Type") or "").strip() or None
    from_local, from_host = _split_address(from_address)
    kind = classify(
        KindSignals(
            notification_type=notification_type,
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
    enclosed_subjects = [header_text(h, "Subject") or "" for h in parts.enclosed_headers]
    asin, product_title = relay.find_product(frame_text)
    if asin is None:
        asin, product_title = relay.find_product(readable + "\n" + html_text)
    in_reply_to = _message_id(header_text(msg, "In-Reply-To"))
    display_names = [n for n, a in (*reply_to, *senders) if a == buyer_address] if buyer_address else []

    return ParsedMail(
        kind=kind,
        message_id=_message_id(header_text(msg, "Message-ID")),
        subject=subject,
        from_address=from_address,
        from_name=from_name,
        to_addresses=tuple(a for _, a in _addresses(msg, "To")),
        buyer_address=buyer_address,
        buyer_name=_first_name(display_names) or subject_info.buyer_name,
        marketplace=_marketplace(buyer_address, msg, readable + "\n" + html_raw, from_host),
        order_id=relay.find_order_id(subject, frame_text, body, html_raw, *enclosed_subjects),
        asin=asin,
        product_title=product_title,
        topic=subject_info.topic,
        body=_cap(body),
        comm_token=relay.find_comm_token(frame_text) or relay.find_comm_token(html_raw),
        received_at=_received_at(msg),
        in_reply_to=in_reply_to,
        references=_references(header_text(msg, "References")),
        notification_type=notification_type,
        related_message_id=(
            _related_message_id(in_reply_to, parts, readable) if kind in _REFERS_TO_OUR_REPLY else None
        ),
        attachments=tuple(Attachment(p.filename, p.content_type, p.size) for p in parts.attachments),
        suspicious=_is_suspicious(msg, from_host),
    )


def _report_type(msg: Message) -> str | None:
    if msg.get_content_type() != "multipart/report":
        return None
    value = msg.get_param("report-type")
    return value if isinstance(value, str) else None


def _is_suspicious(msg: Message, from_host: str) -> bool:
    """Claims to come from Amazon, yet our server's Authentication-Results record a DKIM/SPF/DMARC failure."""
    claims_amazon = bool(AMAZON_HOST.search(from_host) or RELAY_HOST.search(from_host))
    return claims_amazon and any(_AUTH_FAIL.search(v) for v in raw_header(msg, "Authentication-Results"))

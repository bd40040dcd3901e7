"""Storing incoming mail: every mail exactly once, raw bytes always kept, threads rebuilt.

A buyer message opens (or reopens) its conversation and starts Amazon's 24 h clock. Amazon's
notices (bounces, opt-outs, claims, returns, refunds, copies of our replies) are stored and linked
to the conversation or outbound reply they concern, but never enter the reply queue.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.db.base import utcnow
from engine.db.models import Conversation, ConversationStatus, Message, OutboxItem, OutboxState, RawMail, Store
from engine.errors import MailParseError
from engine.mail import MailKind, ParsedMail, parse_mail, thread_key
from engine.services import audit
from engine.services.deadlines import refresh_internal_deadline_or_warn
from engine.workflow.sla import AMAZON_RESPONSE_WINDOW

UNPARSED = "unparsed"

Retime = Callable[[datetime], datetime]

# Notices about an order that a human should see on the conversation, without a reply being due.
_ORDER_NOTICES = frozenset(
    {MailKind.ATOZ_CLAIM, MailKind.RETURN_REQUEST, MailKind.CANCELLATION_REQUEST, MailKind.REFUND_NOTICE}
)
_BOUNCES = frozenset({MailKind.DELIVERY_FAILURE, MailKind.OPTOUT})


@dataclass(frozen=True)
class StoredMail:
    status: Literal["new", "duplicate", "unparsed"]
    message_row_id: int | None
    kind: str
    reason: str | None = None  # why it could not be parsed


def _keep_raw(session: Session, raw: bytes) -> str:
    digest = hashlib.sha256(raw).hexdigest()
    if session.scalar(select(RawMail.sha256).where(RawMail.sha256 == digest)) is None:
        try:
            with session.begin_nested():
                session.add(RawMail(sha256=digest, size=len(raw), content=raw))
        except IntegrityError:
            pass  # another worker stored the same bytes first
    return digest


def _existing(session: Session, store_id: int, key: str) -> Message | None:
    return session.scalar(select(Message).where(Message.store_id == store_id, Message.dedupe_key == key))


def _insert(session: Session, message: Message, conversation: Conversation | None = None) -> bool:
    """False when a concurrent writer stored the same mail first (the unique key decides)."""
    try:
        with session.begin_nested():
            session.add(message)
            if conversation is not None:
                message.conversation = conversation
            session.flush()
    except IntegrityError:
        return False
    return True


def store_mail(
    session: Session,
    store: Store,
    raw: bytes,
    *,
    source: str,
    mailbox_id: int | None = None,
    retime: Retime | None = None,
) -> StoredMail:
    """Store one mail. `retime` maps its received time to another (only the demo inbox uses it)."""
    digest = _keep_raw(session, raw)
    try:
        parsed = parse_mail(raw)
    except MailParseError as exc:
        key = f"sha:{digest}"
        if (found := _existing(session, store.id, key)) is not None:
            return StoredMail("duplicate", found.id, found.kind)
        row = Message(
            store_id=store.id,
            mailbox_id=mailbox_id,
            kind=UNPARSED,
            dedupe_key=key,
            raw_sha256=digest,
            source=source,
            parse_error=str(exc),
            received_at=utcnow(),
            processed_at=utcnow(),
        )
        if not _insert(session, row):
            return StoredMail("duplicate", None, UNPARSED)
        return StoredMail("unparsed", row.id, UNPARSED, reason=str(exc))

    key = parsed.dedupe_key or f"sha:{digest}"
    if (found := _existing(session, store.id, key)) is not None:
        return StoredMail("duplicate", found.id, found.kind)

    received = parsed.received_at or utcnow()
    if retime is not None:
        received = retime(received)
    row = Message(
        store_id=store.id,
        mailbox_id=mailbox_id,
        direction="in",
        kind=parsed.kind.value,
        dedupe_key=key,
        message_id=parsed.message_id,
        comm_token=parsed.comm_token,
        related_message_id=parsed.related_message_id,
        notification_type=parsed.notification_type,
        subject=parsed.subject,
        from_address=parsed.from_address,
        to_address=parsed.to_addresses[0] if parsed.to_addresses else None,
        body=parsed.body,
        received_at=received,
        raw_sha256=digest,
        source=source,
        attachments=[
            {"filename": a.filename, "content_type": a.content_type, "size": a.size} for a in parsed.attachments
        ],
        suspicious=parsed.suspicious,
    )
    conversation: Conversation | None
    if parsed.kind == MailKind.BUYER_MESSAGE and parsed.buyer_address and not parsed.suspicious:
        conversation = _conversation_for(session, store, parsed)
        _buyer_message_arrived(conversation, store, parsed, received)
    else:
        row.processed_at = utcnow()  # nothing to draft
        conversation = _linked_conversation(session, store, parsed)
    if not _insert(session, row, conversation):
        return StoredMail("duplicate", None, row.kind)
    if parsed.kind in _BOUNCES and parsed.related_message_id:
        _mark_reply_undelivered(session, parsed, row)
    return StoredMail("new", row.id, row.kind)


def _conversation_for(session: Session, store: Store, parsed: ParsedMail) -> Conversation:
    assert parsed.buyer_address is not None
    key = thread_key(parsed.buyer_address, parsed.order_id)
    conversation = session.scalar(
        select(Conversation).where(Conversation.store_id == store.id, Conversation.thread_key == key)
    )
    if conversation is None and not parsed.order_id:
        # Current-generation mails may carry no order id: continue the buyer's latest thread.
        conversation = session.scalar(
            select(Conversation)
            .where(
                Conversation.store_id == store.id,
                func.lower(Conversation.buyer_address) == parsed.buyer_address.lower(),
            )
            .order_by(Conversation.last_message_at.desc())
            .limit(1)
        )
    if conversation is None:
        conversation = Conversation(
            store_id=store.id,
            thread_key=key,
            buyer_address=parsed.buyer_address,
            order_id=parsed.order_id,
            status=ConversationStatus.OPEN,
            tags=[],
        )
        session.add(conversation)
    return conversation


def _buyer_message_arrived(conversation: Conversation, store: Store, parsed: ParsedMail, received: datetime) -> None:
    conversation.buyer_address = parsed.buyer_address or conversation.buyer_address
    conversation.marketplace = conversation.marketplace or parsed.marketplace
    conversation.buyer_name = conversation.buyer_name or parsed.buyer_name
    conversation.asin = conversation.asin or parsed.asin
    conversation.product_title = conversation.product_title or parsed.product_title
    conversation.subject = conversation.subject or parsed.subject
    if conversation.last_message_at is None or received > conversation.last_message_at:
        conversation.last_message_at = received
    # Amazon's clock runs from the oldest buyer message not yet answered; a newer one does not extend it.
    if conversation.awaiting_since is None or received < conversation.awaiting_since:
        conversation.awaiting_since = received
    conversation.amazon_deadline = conversation.awaiting_since + AMAZON_RESPONSE_WINDOW
    refresh_internal_deadline_or_warn(conversation, store, now=utcnow())
    if conversation.status != ConversationStatus.HOLD:
        conversation.status = ConversationStatus.OPEN


def _linked_conversation(session: Session, store: Store, parsed: ParsedMail) -> Conversation | None:
    if parsed.related_message_id:
        outbox = session.scalar(select(OutboxItem).where(OutboxItem.message_id == parsed.related_message_id))
        if outbox is not None:
            return session.get(Conversation, outbox.conversation_id)
    if parsed.kind in _ORDER_NOTICES and parsed.order_id:
        return session.scalar(
            select(Conversation)
            .where(Conversation.store_id == store.id, Conversation.order_id == parsed.order_id)
            .order_by(Conversation.id.desc())
            .limit(1)
        )
    return None


def _mark_reply_undelivered(session: Session, parsed: ParsedMail, notice: Message) -> None:
    outbox = session.scalar(select(OutboxItem).where(OutboxItem.message_id == parsed.related_message_id))
    if outbox is None or outbox.state == OutboxState.FAILED:
        return
    before = {"state": outbox.state}
    reason = "buyer opted out of messages" if parsed.kind == MailKind.OPTOUT else "Amazon could not deliver it"
    outbox.state = OutboxState.FAILED
    outbox.last_error = f"Reply not delivered: {reason} (notice message #{notice.id})."
    audit.record(
        session,
        "outbox.undelivered",
        "outbox_item",
        outbox.id,
        before=before,
        after={"state": outbox.state, "reason": outbox.last_error},
    )

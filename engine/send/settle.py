"""Where an outbox item ends up, written the same way by the send worker and by an agent's decision.

Each function changes one item inside the caller's transaction and writes an audit event; none of them
touches the network.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import (
    Conversation,
    ConversationStatus,
    Draft,
    DraftStatus,
    Message,
    Note,
    OutboxItem,
    OutboxState,
)
from engine.errors import SendError
from engine.integrations.events import emit_reply_event
from engine.services import audit
from engine.services.stats_record import record_answers

__all__ = ["FIRST_RETRY", "LONGEST_RETRY", "mark_failed", "mark_sent", "mark_unknown", "note", "retry_delay"]

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, ... minutes after the n-th failed attempt, capped at an hour."""
    return min(FIRST_RETRY * 2 ** max(0, attempts - 1), LONGEST_RETRY)


def note(session: Session, item: OutboxItem, text: str) -> None:
    session.add(Note(conversation_id=item.conversation_id, author_id=None, text=text))


def _release(item: OutboxItem) -> None:
    item.lease_until = None


def mark_sent(session: Session, item: OutboxItem, now: datetime, *, how: str, actor_id: int | None = None) -> None:
    """The reply went out: the thread shows it, the draft is sent, Amazon's clock stops (unless the buyer
    wrote again after the message it answers)."""
    before = {"state": item.state}
    item.state, item.sent_at, item.next_attempt_at, item.last_error, item.updated_at = (
        OutboxState.SENT,
        now,
        None,
        None,
        now,
    )
    _release(item)
    conversation = session.get_one(Conversation, item.conversation_id)
    key = f"mid:{item.message_id}"
    if session.scalar(select(Message.id).where(Message.store_id == item.store_id, Message.dedupe_key == key)) is None:
        session.add(
            Message(
                store_id=item.store_id,
                conversation_id=conversation.id,
                mailbox_id=item.mailbox_id,
                direction="out",
                kind="reply",
                dedupe_key=key,
                message_id=item.message_id,
                subject=item.subject,
                from_address=item.from_address,
                to_address=item.to_address,
                body=item.body,
                received_at=now,
                source="reply",
                processed_at=now,
                attachments=[],
            )
        )
    draft = session.get(Draft, item.draft_id)
    if draft is not None:
        draft.status = DraftStatus.SENT
        draft.final_text = draft.final_text or item.body
    _reply_went_out(session, conversation, draft, now)
    record_answers(session, [conversation.id])
    emit_reply_event(session, "reply.sent", item, how=how)
    audit.record(
        session,
        "outbox.sent",
        "outbox_item",
        item.id,
        actor_id=actor_id,
        before=before,
        after={"state": item.state, "how": how},
    )


def _reply_went_out(session: Session, conversation: Conversation, draft: Draft | None, now: datetime) -> None:
    """Stop Amazon's clock, unless the buyer wrote again after the message this reply answers."""
    answered_up_to = draft.created_at if draft is not None else now
    if draft is not None and draft.message_id is not None:
        answered = session.get(Message, draft.message_id)
        answered_up_to = answered.received_at if answered is not None else answered_up_to
    newer = session.scalar(
        select(Message.received_at)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == "in",
            Message.kind == "buyer_message",
            Message.received_at > answered_up_to,
        )
        .order_by(Message.received_at)
        .limit(1)
    )
    conversation.last_message_at = max(filter(None, (conversation.last_message_at, now)))
    if newer is not None:
        conversation.awaiting_since = newer  # the deadline of the newer message keeps running
        return
    conversation.awaiting_since = conversation.amazon_deadline = conversation.internal_deadline = None
    if conversation.status not in (ConversationStatus.CLOSED,):
        conversation.status = ConversationStatus.WAITING


def mark_failed(session: Session, item: OutboxItem, error: SendError, now: datetime, *, max_attempts: int) -> bool:
    """Record a failure; True when it will be retried (temporary, and attempts left)."""
    before = {"state": item.state, "attempts": item.attempts}
    retry = not error.permanent and item.attempts < max_attempts
    item.state, item.updated_at = OutboxState.FAILED, now
    _release(item)
    item.next_attempt_at = now + retry_delay(item.attempts) if retry else None
    item.last_error = (
        str(error) if retry or error.permanent else f"Gave up after {item.attempts} attempts. Last error: {error}"
    )
    if not retry:
        note(session, item, f"Reply not sent: {item.last_error}")
        emit_reply_event(session, "reply.failed", item, code=error.code)
    audit.record(
        session,
        "outbox.retry" if retry else "outbox.failed",
        "outbox_item",
        item.id,
        before=before,
        after={"state": item.state, "code": error.code, "reason": item.last_error},
    )
    return retry


def mark_unknown(session: Session, item: OutboxItem, reason: str, now: datetime) -> None:
    """Perhaps delivered, perhaps not: never retried by itself; an agent marks it sent or sends it again."""
    before = {"state": item.state}
    item.state, item.next_attempt_at, item.updated_at = OutboxState.UNKNOWN, None, now
    _release(item)
    item.last_error = reason
    note(session, item, f"Reply may or may not have been delivered: {reason}")
    audit.record(
        session, "outbox.unknown", "outbox_item", item.id, before=before, after={"state": item.state, "reason": reason}
    )

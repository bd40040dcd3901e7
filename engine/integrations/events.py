"""The event outbox. `emit` runs in the caller's transaction: an event exists exactly when its change committed,
and the worker delivers it afterwards (`engine.integrations.delivery`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.base import utcnow
from engine.db.models import (
    Conversation,
    ConversationStatus,
    Draft,
    Mailbox,
    Message,
    OutboxItem,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

__all__ = [
    "EVENT_TYPES",
    "PAYLOAD_VERSION",
    "TEST_EVENT",
    "conversation_data",
    "emit",
    "emit_conversation_event",
    "emit_draft_event",
    "emit_messages_received",
    "emit_reply_event",
    "emit_sla_events",
    "emit_sync_failed",
]

PAYLOAD_VERSION = 1
EVENT_TYPES = (
    "message.received",
    "draft.ready",
    "draft.blocked",
    "sla.at_risk",
    "sla.breached",
    "reply.approved",
    "reply.sent",
    "reply.failed",
    "conversation.closed",
    "mailbox.sync_failed",
)
TEST_EVENT = "webhook.test"  # sent only to the endpoint being tested
_SLA_SCAN_LIMIT = 2000  # conversations looked at per pass; the most urgent first
_SLA_LOOKBACK = timedelta(days=7)  # older missed deadlines were reported long ago


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def conversation_data(conversation: Conversation, **extra: Any) -> dict[str, Any]:
    """The fields every conversation event carries; `text` (if given) reaches only endpoints that opted in."""
    data: dict[str, Any] = {
        "conversation_id": conversation.id,
        "store_id": conversation.store_id,
        "store": conversation.store.name,
        "marketplace": conversation.marketplace,
        "order_id": conversation.order_id,
        "language": conversation.language,
        "intent": conversation.intent,
        "status": conversation.status,
        "amazon_deadline": _iso(conversation.amazon_deadline),
    }
    data.update({key: _iso(value) if isinstance(value, datetime) else value for key, value in extra.items()})
    return data


def _subscribed(endpoint: WebhookEndpoint, event_type: str, store_id: int | None) -> bool:
    if event_type not in endpoint.events:
        return False
    return not endpoint.store_ids or store_id is None or store_id in endpoint.store_ids


def emit(
    session: Session,
    event_type: str,
    data: dict[str, Any],
    *,
    store_id: int | None,
    dedupe_key: str | None = None,
    only_endpoint_id: int | None = None,
) -> WebhookEvent:
    """Record an event and queue it for every active endpoint subscribed to its type and store."""
    if event_type not in EVENT_TYPES and event_type != TEST_EVENT:
        raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    now = utcnow()
    event = WebhookEvent(
        event_type=event_type,
        store_id=store_id,
        payload={"type": event_type, "version": PAYLOAD_VERSION, "timestamp": now.isoformat(), "data": data},
        dedupe_key=dedupe_key,
        created_at=now,
    )
    session.add(event)
    session.flush()
    query = select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True))
    if only_endpoint_id is not None:
        query = query.where(WebhookEndpoint.id == only_endpoint_id)
    for endpoint in session.scalars(query):
        if only_endpoint_id is not None or _subscribed(endpoint, event_type, store_id):
            session.add(
                WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, next_attempt_at=now, created_at=now)
            )
    return event


def emit_conversation_event(
    session: Session, event_type: str, conversation: Conversation, *, dedupe_key: str | None = None, **extra: Any
) -> WebhookEvent:
    session.flush()  # a new conversation needs its id in the payload
    data = conversation_data(conversation, **extra)
    return emit(session, event_type, data, store_id=conversation.store_id, dedupe_key=dedupe_key)


def emit_sla_events(session: Session, *, now: datetime, at_risk_lead: timedelta) -> int:
    """`sla.at_risk` and `sla.breached`, once per conversation, event and deadline (a new buyer message starts a
    new deadline). Returns how many events were written."""
    open_states = (ConversationStatus.OPEN, ConversationStatus.HOLD)
    candidates = list(
        session.scalars(
            select(Conversation)
            .where(
                Conversation.status.in_(open_states),
                Conversation.amazon_deadline.is_not(None),
                Conversation.amazon_deadline <= now + at_risk_lead,
                Conversation.amazon_deadline > now - _SLA_LOOKBACK,
            )
            .order_by(Conversation.amazon_deadline)
            .limit(_SLA_SCAN_LIMIT)
        )
    )
    wanted: dict[str, tuple[str, Conversation]] = {}
    for conversation in candidates:
        deadline = conversation.amazon_deadline
        assert deadline is not None
        event_type = "sla.breached" if deadline <= now else "sla.at_risk"
        wanted[f"{event_type}:{conversation.id}:{deadline.isoformat()}"] = (event_type, conversation)
    if not wanted:
        return 0
    seen = set(session.scalars(select(WebhookEvent.dedupe_key).where(WebhookEvent.dedupe_key.in_(list(wanted)))))
    written = 0
    for key, (event_type, conversation) in wanted.items():
        if key not in seen:
            emit_conversation_event(session, event_type, conversation, dedupe_key=key, at=now)
            written += 1
    return written


def emit_messages_received(session: Session, messages: Iterable[Message]) -> None:
    """`message.received` for each new buyer message (notices and copies of our replies are not events)."""
    for message in messages:
        if message.kind == "buyer_message" and message.conversation_id is not None and message.conversation:
            emit_conversation_event(
                session,
                "message.received",
                message.conversation,
                message_id=message.id,
                received_at=message.received_at,
                subject=message.subject,
                text=message.body,
            )


def emit_draft_event(session: Session, draft: Draft) -> WebhookEvent:
    """`draft.ready`, or `draft.blocked` when the compliance gate refused the draft (with the rules it broke)."""
    session.flush()
    verdict = draft.verdict or {}
    rules = sorted({str(v.get("rule")) for v in verdict.get("violations", []) if isinstance(v, dict)})
    return emit_conversation_event(
        session,
        "draft.ready" if draft.allowed else "draft.blocked",
        draft.conversation,
        draft_id=draft.id,
        message_id=draft.message_id,
        action=draft.action,
        drafter=draft.drafter,
        rules=rules,
        text=draft.text,
    )


def emit_reply_event(session: Session, event_type: str, item: OutboxItem, **extra: Any) -> WebhookEvent | None:
    """`reply.approved`, `reply.sent` or `reply.failed` for an outbox item."""
    conversation = session.get(Conversation, item.conversation_id)
    if conversation is None:
        return None
    return emit_conversation_event(
        session,
        event_type,
        conversation,
        outbox_id=item.id,
        draft_id=item.draft_id,
        state=item.state,
        sent_at=item.sent_at,
        error=item.last_error,
        text=item.body,
        **extra,
    )


def emit_sync_failed(session: Session, mailbox: Mailbox, code: str, message: str) -> WebhookEvent:
    data = {"mailbox_id": mailbox.id, "mailbox": mailbox.name, "store_id": mailbox.store_id, "code": code}
    data["store"], data["error"] = mailbox.store.name, message
    return emit(session, "mailbox.sync_failed", data, store_id=mailbox.store_id)

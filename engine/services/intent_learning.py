"""Learning from the queue: the buyer messages the intent model was least sure about lately, for a lead to label.

A label is stored as an accepted intent example tied to its message (`engine.services.knowledge.accepted_examples`
hands those to the next training run) and fixes the message's intent at once. Messages that already have an
example (labelled here, or corrected by an agent) are not offered again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import IntentExample, Message
from engine.errors import InputError
from engine.mail import MailKind
from engine.services import audit
from engine.taxonomy import INTENTS
from engine.workflow.permissions import Action, Principal, Role, require

DEFAULT_DAYS = 7
DEFAULT_LIMIT = 20
MAX_TEXT = 2000  # a lead labels from the buyer's first words; long pastes are cut for the page


@dataclass(frozen=True)
class UnsureMessage:
    message_id: int
    text: str
    language: str | None
    intent: str | None
    score: float | None
    secondary: str | None
    secondary_score: float | None
    needs_review: bool
    received_at: datetime


def least_certain_messages(
    session: Session, principal: Principal, *, now: datetime, days: int = DEFAULT_DAYS, limit: int = DEFAULT_LIMIT
) -> list[UnsureMessage]:
    """Buyer messages of the last `days` in the principal's stores, flagged ones first, then lowest score."""
    require(principal, Action.EDIT_INTENT_EXAMPLES)
    labelled = select(IntentExample.message_id).where(IntentExample.message_id.is_not(None))
    query = (
        select(Message)
        .where(
            Message.kind == MailKind.BUYER_MESSAGE.value,
            Message.intent.is_not(None),
            Message.received_at >= now - timedelta(days=days),
            Message.id.not_in(labelled),
        )
        .order_by(Message.intent_needs_review.desc(), Message.intent_score.asc(), Message.id)
        .limit(limit)
    )
    if principal.role is not Role.ADMIN:
        query = query.where(Message.store_id.in_(sorted(principal.store_ids) or [-1]))
    return [_unsure(m) for m in session.scalars(query)]


def _unsure(message: Message) -> UnsureMessage:
    scores = message.intent_scores or {}
    return UnsureMessage(
        message_id=message.id,
        text=message.body[:MAX_TEXT],
        language=message.language,
        intent=message.intent,
        score=message.intent_score,
        secondary=message.intent_secondary,
        secondary_score=scores.get(message.intent_secondary or ""),
        needs_review=bool(message.intent_needs_review),
        received_at=message.received_at,
    )


def relabel(
    session: Session, principal: Principal, message: Message, intent: str, *, source: str, status: str
) -> IntentExample:
    """A person set `message`'s intent: it is certain from now on, and the message becomes a training example."""
    message.intent, message.intent_score, message.intent_needs_review = intent, 1.0, False
    example = IntentExample(
        text=message.body,
        intent=intent,
        language=message.language,
        source=source,
        status=status,
        message_id=message.id,
        created_by_id=principal.agent_id,
    )
    session.add(example)
    return example


def label_message(session: Session, principal: Principal, message_id: int, intent: str) -> IntentExample:
    """A lead's label: an accepted training example for the next run, and the message's intent from now on."""
    require(principal, Action.EDIT_INTENT_EXAMPLES)
    if intent not in INTENTS:
        raise InputError(f"Unknown intent {intent!r}. Pick one of: {', '.join(INTENTS)}.")
    message = session.get(Message, message_id)
    if message is None or message.kind != MailKind.BUYER_MESSAGE.value:
        raise InputError(f"Buyer message {message_id} does not exist. Refresh the page.")
    if principal.role is not Role.ADMIN and message.store_id not in principal.store_ids:
        raise InputError(f"Buyer message {message_id} is in a store you are not assigned to. Refresh the page.")
    if session.scalar(select(IntentExample.id).where(IntentExample.message_id == message_id).limit(1)):
        raise InputError(f"Buyer message {message_id} is already labelled. Refresh the page.")
    before = {"intent": message.intent}
    example = relabel(session, principal, message, intent, source="review", status="accepted")
    if message.conversation is not None and message.conversation.intent == before["intent"]:
        message.conversation.intent = intent
    session.flush()
    audit.record(
        session,
        "intent_example.label",
        "message",
        message.id,
        actor_id=principal.agent_id,
        before=before,
        after={"intent": intent, "example_id": example.id},
    )
    return example

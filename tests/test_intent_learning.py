"""Learning from the queue: least-sure buyer messages of the week, one-click labels that train the next model,
and the stored intent scores (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from engine.db.models import Agent, Conversation, IntentExample, Message, Store
from engine.errors import InputError, PermissionDenied
from engine.services import intent_learning
from engine.services.knowledge import accepted_examples
from engine.workflow.permissions import Principal, Role

NOW = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)


@pytest.fixture
def store(session: Session) -> Store:
    store = Store(name="Learning store", marketplaces=["DE"], allow_list=[])
    session.add(store)
    session.flush()
    return store


@pytest.fixture
def lead(session: Session, store: Store) -> Principal:
    agent = Agent(username="learning-lead", display_name="Lead", role=Role.LEAD)
    session.add(agent)
    session.flush()
    return Principal(agent_id=agent.id, role=Role.LEAD, store_ids=frozenset({store.id}))


def _message(
    session: Session,
    store: Store,
    key: str,
    *,
    score: float,
    flagged: bool = False,
    age: timedelta = timedelta(hours=1),
    intent: str = "order_status",
) -> Message:
    conversation = Conversation(store_id=store.id, thread_key=key, marketplace="DE", buyer_address=f"{key}@x.example")
    session.add(conversation)
    session.flush()
    message = Message(
        store_id=store.id,
        conversation_id=conversation.id,
        kind="buyer_message",
        dedupe_key=key,
        body=f"Nachricht {key}",
        received_at=NOW - age,
        language="de",
        intent=intent,
        intent_score=score,
        intent_needs_review=flagged,
        intent_scores={intent: score, "complaint_feedback": round(1 - score, 4)},
        intent_secondary="complaint_feedback",
    )
    session.add(message)
    conversation.intent = intent
    session.flush()
    return message


def test_scores_and_runner_up_are_stored(session: Session, store: Store) -> None:
    message = _message(session, store, "stored", score=0.6)
    session.expire_all()
    again = session.get(Message, message.id)
    assert again is not None
    assert again.intent_scores == {"order_status": 0.6, "complaint_feedback": 0.4}
    assert again.intent_secondary == "complaint_feedback"


def test_least_certain_lists_flagged_then_lowest_scores_of_the_week(
    session: Session, store: Store, lead: Principal
) -> None:
    sure = _message(session, store, "sure", score=0.95)
    unsure = _message(session, store, "unsure", score=0.5)
    flagged = _message(session, store, "flagged", score=0.7, flagged=True)
    _message(session, store, "old", score=0.1, age=timedelta(days=8))
    listed = intent_learning.least_certain_messages(session, lead, now=NOW)
    assert [m.message_id for m in listed] == [flagged.id, unsure.id, sure.id]
    assert listed[1].secondary == "complaint_feedback" and listed[1].secondary_score == pytest.approx(0.5)


def test_other_stores_are_not_listed_for_a_lead(session: Session, store: Store, lead: Principal) -> None:
    elsewhere = Store(name="Other store", marketplaces=["FR"], allow_list=[])
    session.add(elsewhere)
    session.flush()
    foreign = _message(session, elsewhere, "foreign", score=0.2)
    assert intent_learning.least_certain_messages(session, lead, now=NOW) == []
    with pytest.raises(InputError, match="not assigned"):
        intent_learning.label_message(session, lead, foreign.id, "order_status")


def test_a_label_becomes_an_accepted_example_and_leaves_the_list(
    session: Session, store: Store, lead: Principal
) -> None:
    message = _message(session, store, "label-me", score=0.4, flagged=True)
    example = intent_learning.label_message(session, lead, message.id, "complaint_feedback")
    assert (example.status, example.source, example.message_id) == ("accepted", "review", message.id)
    assert (message.intent, message.intent_needs_review) == ("complaint_feedback", False)
    assert message.conversation is not None and message.conversation.intent == "complaint_feedback"
    assert intent_learning.least_certain_messages(session, lead, now=NOW) == []
    trained = [e for e in accepted_examples(session) if e.text == message.body]
    assert [(e.intent, e.source) for e in trained] == [("complaint_feedback", "correction")]
    with pytest.raises(InputError, match="already labelled"):
        intent_learning.label_message(session, lead, message.id, "order_status")


def test_labels_are_checked(session: Session, store: Store, lead: Principal) -> None:
    message = _message(session, store, "checked", score=0.4)
    with pytest.raises(InputError, match="Unknown intent"):
        intent_learning.label_message(session, lead, message.id, "angry")
    with pytest.raises(InputError, match="does not exist"):
        intent_learning.label_message(session, lead, message.id + 999, "order_status")
    agent = Principal(agent_id=lead.agent_id, role=Role.AGENT, store_ids=lead.store_ids)
    with pytest.raises(PermissionDenied):
        intent_learning.least_certain_messages(session, agent, now=NOW)
    assert session.query(IntentExample).count() == 0

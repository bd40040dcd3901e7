"""The queue and the agent's actions, through the service layer (which enforces permissions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.components import Components
from engine.db.models import AuditEvent, Conversation, ConversationStatus, Draft, DraftStatus, OutboxItem, Store
from engine.errors import ComplianceBlocked, ConflictError, InputError, PermissionDenied
from engine.services import conversations as actions
from engine.services.agents import NewPassword, create_agent, principal_for
from engine.services.inbox import store_mail
from engine.services.pipeline import process_pending
from engine.services.queue import QueueFilters, list_queue
from engine.services.stores import ensure_store
from engine.workflow.permissions import Principal, Role
from engine.workflow.sla import SlaState
from tests.helpers import authenticate, relay_mail

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _setup(session: Session, components: Components) -> tuple[Store, Store, Principal, Principal]:
    eu = ensure_store(session, "EU", sender_address="service@eu.example")
    us = ensure_store(session, "US", region="na", sender_address="service@us.example")
    ages = {"a": 30, "b": 22, "c": 2}  # hours before NOW: overdue, at risk, fine
    for key, hours in ages.items():
        store_mail(
            session, eu, relay_mail(sent=NOW - timedelta(hours=hours), message_id=f"<{key}@x>",
                                    alias=f"{key}buyer000000001@marketplace.amazon.de",
                                    body="Where is my parcel? Tracking shows nothing."),
            source=key,
        )  # fmt: skip
    store_mail(
        session, us, relay_mail(sent=NOW - timedelta(hours=40), message_id="<us@x>",
                                alias="usbuyer0000000001@marketplace.amazon.com"),
        source="us",
    )  # fmt: skip
    process_pending(session, components)
    agent = create_agent(session, "mia", password=NewPassword.of("correct horse"), stores=[eu])
    admin = create_agent(session, "ada", password=NewPassword.of("correct horse"), role=Role.ADMIN)
    return eu, us, principal_for(agent), principal_for(admin)


def test_queue_is_sorted_by_amazon_deadline_and_limited_to_permitted_stores(
    session: Session, fake_components: Components
) -> None:
    _, _, agent, admin = _setup(session, fake_components)
    page = list_queue(session, agent, now=NOW)
    assert [r.store for r in page.rows] == ["EU", "EU", "EU"]
    assert [r.sla for r in page.rows] == [SlaState.OVERDUE, SlaState.AT_RISK, SlaState.OK]
    deadlines = [r.amazon_deadline for r in page.rows]
    assert deadlines == sorted(deadlines)  # type: ignore[type-var]
    everything = list_queue(session, admin, now=NOW)
    assert everything.total == 4 and everything.rows[0].store == "US"  # 40 h old: most overdue
    assert list_queue(session, admin, QueueFilters(marketplaces=("US",)), now=NOW).total == 1
    assert (
        list_queue(session, admin, page=2, page_size=3, now=NOW).rows[0].conversation_id
        == everything.rows[3].conversation_id
    )


def test_approving_queues_the_exact_text_once(session: Session, fake_components: Components) -> None:
    _, _, agent, _ = _setup(session, fake_components)
    row = list_queue(session, agent, now=NOW).rows[0]
    view = actions.get_conversation(session, agent, row.conversation_id)
    assert view.current_draft is not None
    text = "Hallo, Ihr Paket ist unterwegs. Die Sendungsnummer finden Sie unter Meine Bestellungen."
    item = actions.approve_draft(session, agent, view.current_draft.id, final_text=text)
    assert item.body == text and item.to_address == view.conversation.buyer_address
    assert item.from_address == "service@eu.example" and item.subject.startswith("Re: ")
    assert view.current_draft.status == DraftStatus.EDITED
    assert view.conversation.status == ConversationStatus.WAITING
    with pytest.raises(ConflictError):
        actions.approve_draft(session, agent, view.current_draft.id)
    assert len(session.scalars(select(OutboxItem)).all()) == 1
    assert (
        session.scalars(select(AuditEvent).where(AuditEvent.action == "draft.approve")).one().actor_id == agent.agent_id
    )


@pytest.mark.parametrize(
    "text",
    [
        "Write to us at help@northwind.example and we sort it out.",
        "Call us on +49 30 1234567.",
        "Visit www.northwind-shop.de for 10% off.",
        "Please leave us a 5-star review and we refund you.",
    ],
)
def test_a_blocked_edit_is_never_queued(session: Session, fake_components: Components, text: str) -> None:
    _, _, agent, _ = _setup(session, fake_components)
    row = list_queue(session, agent, now=NOW).rows[0]
    draft_id = row.draft_id
    assert draft_id is not None
    with pytest.raises(ComplianceBlocked, match="not sent"):
        actions.approve_draft(session, agent, draft_id, final_text=text)
    assert session.scalars(select(OutboxItem)).all() == []
    assert session.get_one(Draft, draft_id).status == DraftStatus.PENDING


def test_agent_cannot_act_on_another_stores_conversation(session: Session, fake_components: Components) -> None:
    _, us, agent, _ = _setup(session, fake_components)
    foreign = session.scalars(select(Conversation).where(Conversation.store_id == us.id)).one()
    with pytest.raises(PermissionDenied):
        actions.get_conversation(session, agent, foreign.id)
    with pytest.raises(PermissionDenied):
        actions.mark_no_response_needed(session, agent, foreign.id)


def test_reject_needs_a_reason_and_no_response_needed_stops_the_clock(
    session: Session, fake_components: Components
) -> None:
    _, _, agent, _ = _setup(session, fake_components)
    row = list_queue(session, agent, now=NOW).rows[0]
    assert row.draft_id is not None
    with pytest.raises(InputError):
        actions.reject_draft(session, agent, row.draft_id, "  ")
    assert actions.reject_draft(session, agent, row.draft_id, "wrong tone").status == DraftStatus.REJECTED
    conversation = actions.mark_no_response_needed(session, agent, row.conversation_id)
    assert conversation.amazon_deadline is None and conversation.status == ConversationStatus.NO_RESPONSE_NEEDED
    assert row.conversation_id not in [r.conversation_id for r in list_queue(session, agent, now=NOW).rows]


def test_close_is_refused_while_a_buyer_waits_and_hold_keeps_the_deadline(
    session: Session, fake_components: Components
) -> None:
    _, _, agent, _ = _setup(session, fake_components)
    row = list_queue(session, agent, now=NOW).rows[0]
    with pytest.raises(ConflictError):
        actions.close(session, agent, row.conversation_id)
    held = actions.hold(session, agent, row.conversation_id)
    assert held.status == ConversationStatus.HOLD and held.amazon_deadline == row.amazon_deadline
    assert row.conversation_id in [r.conversation_id for r in list_queue(session, agent, now=NOW).rows]


def test_intent_correction_becomes_a_training_example(session: Session, fake_components: Components) -> None:
    _, _, agent, _ = _setup(session, fake_components)
    row = list_queue(session, agent, now=NOW).rows[0]
    view = actions.get_conversation(session, agent, row.conversation_id)
    example = actions.correct_intent(session, agent, view.messages[0].id, "complaint_feedback")
    assert example.intent == "complaint_feedback" and example.status == "pending"
    assert view.messages[0].intent == "complaint_feedback"
    with pytest.raises(InputError):
        actions.correct_intent(session, agent, view.messages[0].id, "not_an_intent")


def test_login_checks_the_password(session: Session) -> None:
    create_agent(session, "lee", password=NewPassword.of("s3cret-pass"))
    assert authenticate(session, "lee", "s3cret-pass").username == "lee"
    with pytest.raises(PermissionDenied, match="Wrong username or password"):
        authenticate(session, "lee", "wrong")
    with pytest.raises(PermissionDenied):
        authenticate(session, "nobody", "s3cret-pass")

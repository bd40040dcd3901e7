"""What admins and leads change on the Settings and Routing pages, through the services: a store's internal
target and business calendar (validated, deadlines recomputed), accounts (roles, stores, skills, capacity,
deactivation, password reset), and an agent's own availability. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import AuditEvent, Conversation, ConversationStatus, Store
from engine.errors import InputError, PermissionDenied
from engine.services.accounts import SignedIn, log_in_with_identity, signed_in
from engine.services.agents import (
    AgentChanges,
    NewPassword,
    agent_account,
    create_agent,
    principal_for,
    set_availability,
    update_agent,
)
from engine.services.inbox import store_mail
from engine.services.stores import ensure_store, store_sla, update_store_sla
from engine.ui.calendar_form import CalendarForm, calendar_from_form, form_values
from engine.workflow.calendar import BusinessCalendar
from engine.workflow.permissions import Principal, Role
from tests.helpers import authenticate, relay_mail

NOW = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
BERLIN: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "hours": {"mon": ["09:00", "18:00"], "tue": ["09:00", "18:00"], "wed": ["09:00", "18:00"],
              "thu": ["09:00", "18:00"], "fri": ["09:00", "18:00"]},
    "holidays": ["2026-12-25"],
}  # fmt: skip


def _admin(session: Session) -> Principal:
    return principal_for(create_agent(session, "ada", password=NewPassword.of("correct horse"), role=Role.ADMIN))


def _waiting_conversation(session: Session, store: Store) -> Conversation:
    store_mail(session, store, relay_mail(sent=datetime(2026, 11, 20, 15, 0, tzinfo=UTC)), source="a")
    return session.scalars(select(Conversation).where(Conversation.store_id == store.id)).one()


# --- store SLA ----------------------------------------------------------------------------------------------


def test_saving_a_calendar_recomputes_waiting_conversations(session: Session) -> None:
    admin = _admin(session)
    store = ensure_store(session, "EU")
    conversation = _waiting_conversation(session, store)
    answered = _waiting_conversation(session, ensure_store(session, "Other"))
    answered.status = ConversationStatus.WAITING
    assert conversation.internal_deadline is None

    # Friday 16:00 Berlin, 4 business hours: 2 today, 2 on Monday from 09:00 -> Monday 11:00 Berlin.
    refreshed = update_store_sla(session, admin, store.id, target_minutes=240, calendar=BERLIN, now=NOW)
    assert refreshed == 1
    assert conversation.internal_deadline == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    saved = store_sla(session, admin, store.id)
    assert saved.target_minutes == 240 and saved.calendar == BusinessCalendar.from_dict(BERLIN).to_dict()

    # Round the clock once the calendar is cleared; no internal deadline at all without a target.
    update_store_sla(session, admin, store.id, target_minutes=240, calendar=None, now=NOW)
    assert conversation.internal_deadline == datetime(2026, 11, 20, 19, 0, tzinfo=UTC)
    update_store_sla(session, admin, store.id, target_minutes=None, calendar=None, now=NOW)
    assert conversation.internal_deadline is None
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "store.sla")).all()
    assert [e.after["target_minutes"] for e in events if e.after] == [240, 240, None]


@pytest.mark.parametrize(
    ("target", "calendar", "says"),
    [
        (0, None, "between 1 and"),
        (60 * 24 * 8, None, "between 1 and"),
        (60, {"timezone": "Mars/Olympus", "hours": {"mon": ["09:00", "18:00"]}}, "Unknown time zone"),
        (60, {"timezone": "Europe/Berlin", "hours": {"mon": ["18:00", "09:00"]}}, "not after they open"),
        (60, {"timezone": "Europe/Berlin", "hours": {}}, "no opening hours"),
        (60, {"timezone": "Europe/Berlin", "hours": {"mon": ["09:00", "18:00"]}, "holidays": ["25.12."]}, "25.12."),
    ],
)
def test_a_bad_target_or_calendar_is_refused_and_nothing_changes(
    session: Session, target: int, calendar: dict[str, Any] | None, says: str
) -> None:
    admin = _admin(session)
    store = ensure_store(session, "EU")
    update_store_sla(session, admin, store.id, target_minutes=120, calendar=BERLIN, now=NOW)
    with pytest.raises(InputError, match=says):
        update_store_sla(session, admin, store.id, target_minutes=target, calendar=calendar, now=NOW)
    assert (store.internal_target_minutes, store.business_calendar["timezone"]) == (120, "Europe/Berlin")


def test_only_admins_change_a_store_sla(session: Session) -> None:
    store = ensure_store(session, "EU")
    lead = principal_for(
        create_agent(session, "lee", password=NewPassword.of("correct horse"), role=Role.LEAD, stores=[store])
    )
    with pytest.raises(PermissionDenied, match="admin"):
        update_store_sla(session, lead, store.id, target_minutes=60, calendar=None, now=NOW)
    with pytest.raises(PermissionDenied):
        store_sla(session, lead, store.id)


def test_the_calendar_form_round_trips() -> None:
    form = form_values(BusinessCalendar.from_dict(BERLIN).to_dict(), "eu")
    assert form.timezone == "Europe/Berlin" and form.hours["sat"] is None
    assert form.hours["mon"] == (time(9), time(18)) and form.holidays_text == "2026-12-25"
    assert BusinessCalendar.from_dict(calendar_from_form(form)) == BusinessCalendar.from_dict(BERLIN)
    fresh = form_values(None, "fe")
    assert fresh.timezone == "Asia/Tokyo" and fresh.hours["fri"] is not None and fresh.hours["sun"] is None
    night = CalendarForm("Asia/Shanghai", {"mon": (time(20), time(0))}, "2026-10-01, 2026-10-02\n")
    data = calendar_from_form(night)
    assert data == {"timezone": "Asia/Shanghai", "hours": {"mon": ["20:00", "24:00"]},
                    "holidays": ["2026-10-01", "2026-10-02"]}  # fmt: skip
    assert BusinessCalendar.from_dict(data).to_dict() == data


# --- accounts -----------------------------------------------------------------------------------------------


def test_an_admin_edits_an_account_and_the_change_is_audited(session: Session) -> None:
    admin = _admin(session)
    eu, us = ensure_store(session, "EU"), ensure_store(session, "US")
    mia = create_agent(session, "mia", password=NewPassword.of("correct horse"), stores=[eu])
    changes = AgentChanges(
        display_name="Mia W.",
        role=Role.LEAD,
        store_ids=[eu.id, us.id],
        languages=["ja", "de", "de"],
        intent_groups=[" returns ", "", "billing"],
        capacity=12,
        password=NewPassword.of("a new secret"),
    )
    update_agent(session, admin, mia.id, changes)
    account = agent_account(session, admin, mia.id)
    assert (account.display_name, account.role, account.capacity) == ("Mia W.", Role.LEAD, 12)
    assert account.store_ids == sorted([eu.id, us.id])
    assert account.languages == ["de", "ja"] and account.intent_groups == ["billing", "returns"]
    assert authenticate(session, "mia", "a new secret").id == mia.id
    with pytest.raises(PermissionDenied):
        authenticate(session, "mia", "correct horse")
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "agent.update")).one()
    assert event.before and event.after and event.before["role"] == "agent" and event.after["role"] == "lead"
    assert event.after["password"] == "reset" and "a new secret" not in str(event.after)

    update_agent(session, admin, mia.id, AgentChanges(active=False))
    with pytest.raises(PermissionDenied):
        authenticate(session, "mia", "a new secret")


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        (AgentChanges(languages=["klingon"]), "Unknown language"),
        (AgentChanges(capacity=0), "Capacity"),
        (AgentChanges(store_ids=[987654]), "do not exist"),
    ],
)
def test_bad_account_edits_are_refused(session: Session, changes: AgentChanges, says: str) -> None:
    admin = _admin(session)
    mia = create_agent(session, "mia", password=NewPassword.of("correct horse"))
    with pytest.raises(InputError, match=says):
        update_agent(session, admin, mia.id, changes)


def test_admins_cannot_lock_themselves_out_and_others_cannot_edit(session: Session) -> None:
    admin = _admin(session)
    with pytest.raises(InputError, match="your own account"):
        update_agent(session, admin, admin.agent_id, AgentChanges(role=Role.AGENT))
    with pytest.raises(InputError, match="your own account"):
        update_agent(session, admin, admin.agent_id, AgentChanges(active=False))
    update_agent(session, admin, admin.agent_id, AgentChanges(display_name="Ada L."))  # the rest is fine
    lead = principal_for(create_agent(session, "lee", password=NewPassword.of("correct horse"), role=Role.LEAD))
    with pytest.raises(PermissionDenied, match="admin"):
        update_agent(session, lead, admin.agent_id, AgentChanges(capacity=3))


def _signed_in(session: Session, principal: Principal) -> SignedIn:
    user = signed_in(session, principal.agent_id)
    assert user is not None
    return user


def test_an_agent_sets_their_own_availability(session: Session) -> None:
    mia = principal_for(create_agent(session, "mia", password=NewPassword.of("correct horse")))
    assert _signed_in(session, mia).available
    set_availability(session, mia, False)
    set_availability(session, mia, False)  # no change, no second event
    assert not _signed_in(session, mia).available
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "agent.availability")).all()
    assert [e.after for e in events] == [{"available": False}]


def test_an_account_without_a_password_signs_in_only_through_single_sign_on(session: Session) -> None:
    sso = create_agent(session, "mia@example.com", password=NewPassword.none())
    assert sso.password_hash == ""
    for guess in ("", "anything at all"):
        with pytest.raises(PermissionDenied):
            authenticate(session, "mia@example.com", guess)
    signed = log_in_with_identity(
        session, {"iss": "https://idp.example", "sub": "mia-1", "email": "Mia@Example.com", "email_verified": True}
    )
    assert isinstance(signed, SignedIn) and signed.principal.agent_id == sso.id
    with pytest.raises(InputError, match="8 characters"):
        NewPassword.of("short")

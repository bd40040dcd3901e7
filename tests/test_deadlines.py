"""The store's internal deadline on conversations: computed from `awaiting_since` with the store's business
calendar and target, kept up to date when mail arrives and after drafting (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.components import Components
from engine.db.models import Conversation, Store
from engine.errors import ConfigError
from engine.services import conversations as actions
from engine.services.agents import NewPassword, create_agent, principal_for
from engine.services.deadlines import compute_internal_deadline, refresh_internal_deadline
from engine.services.inbox import store_mail
from engine.services.pipeline import process_pending
from engine.services.stores import ensure_store
from tests.helpers import relay_mail

BERLIN_OFFICE: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "hours": {day: ["09:00", "18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-24", "2026-12-25"],
}
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _store(session: Session, calendar: dict[str, Any] | None, target: int | None, name: str = "EU") -> Store:
    store = ensure_store(session, name, sender_address="service@eu.example")
    store.business_calendar, store.internal_target_minutes = calendar, target
    session.flush()
    return store


def _conversation(session: Session, store: Store) -> Conversation:
    conversation = session.scalar(select(Conversation).where(Conversation.store_id == store.id))
    assert conversation is not None
    return conversation


def _utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("calendar", "target", "awaiting", "expected"),
    [
        # Friday 16:00 Berlin (15:00 UTC) + 4 business hours: 2 h on Friday, 2 h from Monday 09:00.
        (BERLIN_OFFICE, 240, _utc(2026, 11, 20, 15), _utc(2026, 11, 23, 10)),
        # Saturday: the clock starts Monday 09:00 Berlin (08:00 UTC).
        (BERLIN_OFFICE, 60, _utc(2026, 11, 21, 10), _utc(2026, 11, 23, 9)),
        # Christmas Eve and Day are holidays: from Wednesday 23 Dec 17:30 Berlin, 30 min then Monday 28th.
        (BERLIN_OFFICE, 60, _utc(2026, 12, 23, 16, 30), _utc(2026, 12, 28, 8, 30)),
        # Summer time: Friday 17:00 Berlin is 15:00 UTC; 2 h -> Monday 10:00 Berlin = 08:00 UTC.
        (BERLIN_OFFICE, 120, _utc(2026, 7, 3, 15), _utc(2026, 7, 6, 8)),
        # A target without a calendar counts round the clock.
        (None, 90, _utc(2026, 11, 21, 10), _utc(2026, 11, 21, 11, 30)),
        # No target: no internal deadline, calendar or not.
        (BERLIN_OFFICE, None, _utc(2026, 11, 20, 15), None),
        (None, None, _utc(2026, 11, 20, 15), None),
        # Nothing awaits a reply.
        (BERLIN_OFFICE, 240, None, None),
    ],
)
def test_internal_deadline_counts_business_time_from_the_oldest_unanswered_message(
    session: Session,
    calendar: dict[str, Any] | None,
    target: int | None,
    awaiting: datetime | None,
    expected: datetime | None,
) -> None:
    store = _store(session, calendar, target)
    conversation = Conversation(store_id=store.id, thread_key="t", buyer_address="b@x", awaiting_since=awaiting)
    session.add(conversation)
    session.flush()
    assert refresh_internal_deadline(conversation, store, now=NOW) == expected
    session.flush()
    session.expire(conversation)
    assert conversation.internal_deadline == expected  # stored and read back as aware UTC


@pytest.mark.parametrize(
    ("calendar", "target", "says"),
    [
        ({"timezone": "Mars/Olympus", "hours": {"mon": ["09:00", "18:00"]}}, 60, "Unknown time zone"),
        ({"timezone": "Europe/Berlin", "hours": {"mon": ["18:00", "09:00"]}}, 60, "close at"),
        ({"timezone": "Europe/Berlin", "hours": {}}, 60, "no opening hours"),
        ({"timezone": "Europe/Berlin", "hours": {"mon": ["09:00", "18:00"]}, "color": "red"}, 60, "color"),
        (BERLIN_OFFICE, 0, "positive number of minutes"),
        (BERLIN_OFFICE, -30, "positive number of minutes"),
    ],
)
def test_a_broken_store_setting_is_a_config_error_naming_the_store(
    session: Session, calendar: dict[str, Any], target: int, says: str
) -> None:
    store = _store(session, calendar, target, name="Northwind EU")
    with pytest.raises(ConfigError, match=says) as raised:
        compute_internal_deadline(_utc(2026, 11, 20, 15), store)
    assert "'Northwind EU'" in str(raised.value)


def test_arriving_mail_sets_the_internal_deadline_and_a_newer_message_keeps_it(session: Session) -> None:
    store = _store(session, BERLIN_OFFICE, 240)
    store_mail(session, store, relay_mail(sent=_utc(2026, 11, 20, 15), message_id="<first@x>"), source="a")
    session.flush()
    conversation = _conversation(session, store)
    assert conversation.internal_deadline == _utc(2026, 11, 23, 10)
    # A follow-up does not extend the clock of the message already waiting.
    store_mail(
        session, store, relay_mail(sent=_utc(2026, 11, 23, 8), message_id="<second@x>", body="Hello?"), source="b"
    )
    session.flush()
    assert conversation.internal_deadline == _utc(2026, 11, 23, 10)


def test_a_broken_calendar_never_stops_mail_intake(session: Session, caplog: pytest.LogCaptureFixture) -> None:
    store = _store(session, {"timezone": "Nowhere/City", "hours": {"mon": ["09:00", "18:00"]}}, 240, name="Broken")
    with caplog.at_level(logging.WARNING, logger="engine.services.deadlines"):
        stored = store_mail(session, store, relay_mail(), source="a")
    assert stored.status == "new"
    conversation = _conversation(session, store)
    assert conversation.amazon_deadline is not None and conversation.internal_deadline is None
    assert any("'Broken'" in record.getMessage() for record in caplog.records)


def test_drafting_refreshes_the_internal_deadline(session: Session, fake_components: Components) -> None:
    store = _store(session, None, None)
    store_mail(session, store, relay_mail(sent=_utc(2026, 11, 20, 15)), source="a")
    conversation = _conversation(session, store)
    assert conversation.internal_deadline is None
    # The store sets a target after the mail arrived: the pipeline picks it up.
    store.business_calendar, store.internal_target_minutes = BERLIN_OFFICE, 240
    assert process_pending(session, fake_components).drafts == 1
    assert conversation.internal_deadline == _utc(2026, 11, 23, 10)


def test_no_response_needed_clears_the_internal_deadline(session: Session) -> None:
    store = _store(session, BERLIN_OFFICE, 240)
    store_mail(session, store, relay_mail(sent=_utc(2026, 11, 20, 15)), source="a")
    conversation = _conversation(session, store)
    agent = principal_for(create_agent(session, "mia", password=NewPassword.of("correct horse"), stores=[store]))
    actions.mark_no_response_needed(session, agent, conversation.id)
    assert conversation.internal_deadline is None
    assert refresh_internal_deadline(conversation, store, now=NOW + timedelta(hours=1)) is None

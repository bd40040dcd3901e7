"""Tags on conversations: normalized, audited, suggested from the team's recent use, and a queue filter
that finds exactly the tagged conversations on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import AuditEvent, Conversation
from engine.errors import ConflictError, InputError, PermissionDenied
from engine.services import claims
from engine.services import conversations as actions
from engine.services.agents import NewPassword, create_agent, principal_for
from engine.services.inbox import store_mail
from engine.services.queue import QueueFilters, list_queue
from engine.services.stores import ensure_store
from tests.helpers import relay_mail

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _conversations(session: Session, count: int) -> list[Conversation]:
    store = ensure_store(session, "EU")
    for n in range(count):
        store_mail(
            session, store, relay_mail(message_id=f"<t{n}@x>", alias=f"buyer{n:012d}@marketplace.amazon.de",
                                       sent=NOW - timedelta(hours=n + 1)),
            source=str(n),
        )  # fmt: skip
    return list(session.scalars(select(Conversation).order_by(Conversation.id)))


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (["VIP", " vip ", "Charge Back!"], ["vip", "charge-back"]),
        (["退货", "返品", "Rückgabe"], ["退货", "返品", "rückgabe"]),
        (["100%_off", 'a"b', "x" * 40], ["100-_off", "a-b", "x" * 32]),
        (["  ", "!!!"], []),
    ],
)
def test_tags_are_normalized_and_audited(session: Session, given: list[str], stored: list[str]) -> None:
    [conversation] = _conversations(session, 1)
    agent = principal_for(
        create_agent(session, "mia", password=NewPassword.of("correct horse"), stores=[conversation.store])
    )
    assert actions.set_tags(session, agent, conversation.id, given) == stored
    assert conversation.tags == stored
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "conversation.tags")).all()
    assert [e.after for e in events] == ([{"tags": stored}] if stored else [])


def test_the_queue_filters_by_tag_exactly(session: Session) -> None:
    first, second, third = _conversations(session, 3)
    admin = principal_for(create_agent(session, "ada", password=NewPassword.of("correct horse"), role="admin"))
    actions.set_tags(session, admin, first.id, ["vip", "退货"])
    actions.set_tags(session, admin, second.id, ["vip-gold"])
    actions.set_tags(session, admin, third.id, ["100%_off"])
    ids = {
        tag: [row.conversation_id for row in list_queue(session, admin, QueueFilters(tag=tag), now=NOW).rows]
        for tag in ("vip", "vip-gold", "退货", "100-_off", "100", "v%p", "ip")
    }
    assert ids == {
        "vip": [first.id],
        "vip-gold": [second.id],
        "退货": [first.id],
        "100-_off": [third.id],
        "100": [],
        "v%p": [],
        "ip": [],
    }
    row = next(r for r in list_queue(session, admin, now=NOW).rows if r.conversation_id == first.id)
    assert row.tags == ["vip", "退货"]
    assert actions.recent_tags(session, admin) == ["100-_off", "vip-gold", "vip", "退货"]


def test_tagging_needs_the_store_and_respects_a_colleagues_claim(session: Session) -> None:
    [conversation] = _conversations(session, 1)
    mia = principal_for(
        create_agent(session, "mia", password=NewPassword.of("correct horse"), stores=[conversation.store])
    )
    ben = principal_for(
        create_agent(session, "ben", password=NewPassword.of("correct horse"), stores=[conversation.store])
    )
    outsider = principal_for(create_agent(session, "otto", password=NewPassword.of("correct horse")))
    with pytest.raises(PermissionDenied):
        actions.set_tags(session, outsider, conversation.id, ["vip"])
    claims.claim(session, mia, conversation.id, now=datetime.now(UTC))
    with pytest.raises(ConflictError):
        actions.set_tags(session, ben, conversation.id, ["vip"])
    with pytest.raises(InputError, match="at most 10"):
        actions.set_tags(session, mia, conversation.id, [f"t{n}" for n in range(11)])


def test_the_queue_names_who_is_working_on_a_conversation(session: Session) -> None:
    [conversation] = _conversations(session, 1)
    mia = create_agent(
        session, "mia", password=NewPassword.of("correct horse"), display_name="Mia", stores=[conversation.store]
    )
    admin = principal_for(create_agent(session, "ada", password=NewPassword.of("correct horse"), role="admin"))
    claimed_at = datetime.now(UTC)
    claims.claim(session, principal_for(mia), conversation.id, now=claimed_at)
    [row] = list_queue(session, admin, now=claimed_at).rows
    assert row.claimed_by == "Mia"
    [later] = list_queue(session, admin, now=claimed_at + timedelta(hours=2)).rows
    assert later.claimed_by is None  # the claim has expired

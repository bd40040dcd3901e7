"""Store isolation in the services (both databases): another store's conversation answers exactly like one
that does not exist, assignees must work on the conversation's store, tag suggestions stay in one's stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.db.models import Conversation, Store
from engine.errors import InputError, PermissionDenied
from engine.services import conversations as actions
from engine.services.agents import NewPassword, create_agent, principal_for
from engine.services.inbox import store_mail
from engine.services.stores import ensure_store
from engine.workflow.permissions import Principal, Role
from tests.helpers import relay_mail

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PASSWORD = NewPassword.of("correct horse battery")


def _conversation(session: Session, store: Store, n: int) -> Conversation:
    store_mail(
        session, store, relay_mail(message_id=f"<iso{n}@x>", alias=f"buyer{n:012d}@marketplace.amazon.de",
                                   sent=NOW - timedelta(hours=n + 1)),
        source=f"iso{n}",
    )  # fmt: skip
    return session.scalars(select(Conversation).where(Conversation.store_id == store.id)).one()


@pytest.fixture
def two_stores(session: Session) -> dict[Any, Any]:
    store_a, store_b = ensure_store(session, "Store A"), ensure_store(session, "Store B")
    conversation_a, conversation_b = _conversation(session, store_a, 1), _conversation(session, store_b, 2)
    people = {
        role: principal_for(create_agent(session, f"{role}-a", password=PASSWORD, role=role, stores=[store_a]))
        for role in (Role.AGENT, Role.LEAD)
    }
    admin = principal_for(create_agent(session, "admin-x", password=PASSWORD, role=Role.ADMIN))
    colleague_b = create_agent(session, "agent-b", password=PASSWORD, stores=[store_b])
    return {"a": conversation_a, "b": conversation_b, "admin": admin, "colleague_b": colleague_b, **people}


@pytest.mark.parametrize("role", [Role.AGENT, Role.LEAD])
def test_another_stores_conversation_answers_like_a_missing_one(
    session: Session, two_stores: dict[Any, Any], role: Role
) -> None:
    principal = two_stores[role]
    assert isinstance(principal, Principal)
    foreign = two_stores["b"]
    assert isinstance(foreign, Conversation)
    missing_id = int(session.scalar(select(func.max(Conversation.id))) or 0) + 1000
    answers = []
    for conversation_id in (foreign.id, missing_id):
        with pytest.raises(PermissionDenied) as refused:
            actions.get_conversation(session, principal, conversation_id)
        answers.append(str(refused.value).replace(str(conversation_id), "N"))
    assert answers[0] == answers[1]
    with pytest.raises(PermissionDenied):
        actions.set_tags(session, principal, foreign.id, ["vip"])
    assert foreign.tags in (None, [])


def test_assignees_must_be_active_colleagues_of_that_store(session: Session, two_stores: dict[Any, Any]) -> None:
    lead, conversation = two_stores[Role.LEAD], two_stores["a"]
    colleague_b = two_stores["colleague_b"]
    assert isinstance(lead, Principal) and isinstance(conversation, Conversation)
    with pytest.raises(InputError, match="works on this store"):
        actions.assign(session, lead, conversation.id, colleague_b.id)
    with pytest.raises(InputError, match="works on this store"):
        actions.assign(session, lead, conversation.id, 10_000_000)
    agent_a = two_stores[Role.AGENT]
    assert isinstance(agent_a, Principal)
    actions.assign(session, lead, conversation.id, agent_a.agent_id)
    assert conversation.assignee_id == agent_a.agent_id


def test_tag_suggestions_come_only_from_ones_own_stores(session: Session, two_stores: dict[Any, Any]) -> None:
    admin, agent_a = two_stores["admin"], two_stores[Role.AGENT]
    conversation_a, conversation_b = two_stores["a"], two_stores["b"]
    assert isinstance(admin, Principal) and isinstance(agent_a, Principal)
    assert isinstance(conversation_a, Conversation) and isinstance(conversation_b, Conversation)
    actions.set_tags(session, admin, conversation_b.id, ["secret-b"])
    actions.set_tags(session, admin, conversation_a.id, ["shared-a"])
    assert actions.recent_tags(session, agent_a) == ["shared-a"]
    assert actions.recent_tags(session, admin) == ["shared-a", "secret-b"]

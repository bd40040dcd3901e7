"""Routing new conversations in the database (SQLite and PostgreSQL): who is eligible, fair round-robin
across runs, the audit trail, and the routing rules file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.components import Components
from engine.db.models import Agent, AuditEvent, Conversation, ConversationStatus, Store
from engine.errors import ConfigError, InputError, PermissionDenied
from engine.services.agents import principal_for
from engine.services.claims import claim
from engine.services.inbox import store_mail
from engine.services.pipeline import process_pending
from engine.services.routing import (
    DEFAULT_ROUTING_RULES,
    current_routing_rules,
    load_routing_rules,
    route_new_conversations,
    routing_rules_from_dict,
    routing_rules_to_dict,
    routing_summary,
    save_routing_rules,
)
from engine.services.stores import ensure_store
from engine.workflow.permissions import Role
from engine.workflow.routing import DEFAULT_PRIORITY, RoutingRules
from tests.helpers import relay_mail

REPO_ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_counter = iter(range(1, 10_000))


def _store(session: Session, name: str = "EU") -> Store:
    return ensure_store(session, name, sender_address=f"service@{name.lower()}.example")


def _agent(
    session: Session,
    name: str,
    stores: Sequence[Store],
    *,
    languages: Sequence[str] = ("en", "de"),
    groups: Sequence[str] = (),
    capacity: int = 50,
    available: bool = True,
    active: bool = True,
) -> Agent:
    agent = Agent(
        username=name.lower(),
        display_name=name,
        role=Role.AGENT,
        languages=list(languages),
        intent_groups=list(groups),
        capacity=capacity,
        available=available,
        active=active,
    )
    agent.stores = list(stores)
    session.add(agent)
    session.flush()
    return agent


def _conversation(
    session: Session,
    store: Store,
    *,
    intent: str | None = "order_status",
    language: str | None = "de",
    hours_ago: float = 1,
    status: ConversationStatus = ConversationStatus.OPEN,
    assignee: Agent | None = None,
) -> Conversation:
    n = next(_counter)
    conversation = Conversation(
        store_id=store.id,
        thread_key=f"thread-{n}",
        buyer_address=f"buyer{n}@marketplace.amazon.de",
        status=status,
        intent=intent,
        language=language,
        awaiting_since=NOW - timedelta(hours=hours_ago),
        assignee_id=assignee.id if assignee else None,
        tags=[],
    )
    session.add(conversation)
    session.flush()
    return conversation


def _assignees(conversations: Sequence[Conversation]) -> list[int | None]:
    return [c.assignee_id for c in conversations]


def test_round_robin_stays_fair_across_runs(session: Session) -> None:
    store = _store(session)
    anna, ben, cleo = (_agent(session, name, [store]) for name in ("Anna", "Ben", "Cleo"))
    first = _conversation(session, store)
    assert [a.agent_id for a in route_new_conversations(session, now=NOW)] == [anna.id]
    # Each run starts after the agent the previous run assigned last, read back from the audit trail.
    second = _conversation(session, store)
    route_new_conversations(session, now=NOW)
    third, fourth = _conversation(session, store, hours_ago=2), _conversation(session, store)
    route_new_conversations(session, now=NOW)
    assert _assignees([first, second, third, fourth]) == [anna.id, ben.id, cleo.id, anna.id]
    assert route_new_conversations(session, now=NOW) == []  # nothing left to route


def test_each_assignment_is_audited_as_the_system_with_its_reason(session: Session) -> None:
    store = _store(session)
    anna = _agent(session, "Anna", [store])
    conversation = _conversation(session, store)
    [assignment] = route_new_conversations(session, now=NOW)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "conversation.assign")).one()
    assert (event.actor_id, event.entity, event.entity_id) == (None, "conversation", conversation.id)
    assert event.before == {"assignee_id": None}
    assert event.after == {"assignee_id": anna.id, "reason": assignment.reason}
    assert assignment.reason.startswith("Assigned to Anna: speaks de")


def test_only_eligible_agents_are_chosen(session: Session) -> None:
    eu, us = _store(session, "EU"), _store(session, "US")
    _agent(session, "Away", [eu], available=False)
    _agent(session, "Gone", [eu], active=False)
    _agent(session, "Elsewhere", [us])
    _agent(session, "Full", [eu], capacity=1)
    full = session.scalars(select(Agent).where(Agent.username == "full")).one()
    _conversation(session, eu, status=ConversationStatus.HOLD, assignee=full)  # counts against capacity
    frank = _agent(session, "Frank", [eu], languages=("fr",))
    conversations = [_conversation(session, eu, language="de"), _conversation(session, eu, language="fr")]
    assignments = {a.conversation_id: a for a in route_new_conversations(session, now=NOW)}
    assert _assignees(conversations) == [None, frank.id]
    german = assignments[conversations[0].id]
    assert german.agent_id is None and "speaks de" in german.reason
    # An unassigned conversation leaves no audit event; the next run tries again.
    assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == "conversation.assign")).all()) == 1


def test_priority_intents_are_routed_first_when_capacity_is_short(session: Session) -> None:
    store = _store(session)
    anna = _agent(session, "Anna", [store], capacity=1)
    older = _conversation(session, store, intent="order_status", hours_ago=20)
    urgent = _conversation(session, store, intent="cancel_order", hours_ago=1)
    route_new_conversations(session, now=NOW)
    assert _assignees([older, urgent]) == [None, anna.id]


def test_specialists_get_their_skill_group_under_the_shipped_rules(session: Session) -> None:
    store = _store(session)
    rules = load_routing_rules(REPO_ROOT / "knowledge")
    generalist = _agent(session, "Gina", [store])
    returns = _agent(session, "Rita", [store], groups=("returns",))
    conversations = [_conversation(session, store, intent="return_refund"), _conversation(session, store)]
    route_new_conversations(session, now=NOW, rules=rules)
    # Returns go to the returns specialist; order questions to the generalist over a specialist of another group.
    assert _assignees(conversations) == [returns.id, generalist.id]


@pytest.mark.parametrize(
    "shape",
    [
        {"assignee": True},
        {"intent": None},
        {"status": ConversationStatus.WAITING},
        {"status": ConversationStatus.HOLD},
        {"status": ConversationStatus.CLOSED},
    ],
)
def test_conversations_not_up_for_routing_are_left_alone(session: Session, shape: dict[str, Any]) -> None:
    store = _store(session)
    anna = _agent(session, "Anna", [store])
    kwargs = {k: v for k, v in shape.items() if k != "assignee"}
    conversation = _conversation(session, store, assignee=anna if shape.get("assignee") else None, **kwargs)
    before = conversation.assignee_id
    assert route_new_conversations(session, now=NOW) == []
    assert conversation.assignee_id == before


def test_a_conversation_someone_is_handling_waits_until_the_claim_lapses(session: Session) -> None:
    store = _store(session)
    anna = _agent(session, "Anna", [store])
    ben = _agent(session, "Ben", [store])
    conversation = _conversation(session, store)
    claim(session, principal_for(ben), conversation.id, now=NOW)
    assert route_new_conversations(session, now=NOW + timedelta(minutes=5)) == []
    assert conversation.assignee_id is None
    route_new_conversations(session, now=NOW + timedelta(minutes=30))
    assert conversation.assignee_id == anna.id


def test_new_mail_is_classified_then_routed(session: Session, fake_components: Components) -> None:
    store = _store(session)
    anna = _agent(session, "Anna", [store], languages=())  # speaks no language: only with the rule relaxed
    store_mail(session, store, relay_mail(), source="test")
    process_pending(session, fake_components)
    conversation = session.scalars(select(Conversation)).one()
    assert conversation.intent is not None
    [strict] = route_new_conversations(session, now=NOW)
    assert strict.agent_id is None
    relaxed = RoutingRules(intent_groups={}, priority=dict(DEFAULT_PRIORITY), language_required=False)
    [assignment] = route_new_conversations(session, now=NOW, rules=relaxed)
    assert assignment.agent_id == anna.id == conversation.assignee_id
    assert routing_summary([strict]) == "routing: 0 of 1 new conversations assigned, 1 left unassigned (see the queue)"
    assert routing_summary([assignment]) == "routing: 1 of 1 new conversations assigned"


# --- the rules file ----------------------------------------------------------------------------------------


def test_the_shipped_rules_file_loads_and_a_missing_one_gives_the_defaults(tmp_path: Path) -> None:
    rules = load_routing_rules(REPO_ROOT / "knowledge")
    assert rules.intent_groups["damaged_defective"] == "returns"
    assert dict(rules.priority) == dict(DEFAULT_PRIORITY) and rules.language_required
    assert load_routing_rules(tmp_path) == DEFAULT_ROUTING_RULES
    assert dict(DEFAULT_ROUTING_RULES.priority) == dict(DEFAULT_PRIORITY)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([], "must be a JSON object"),
        ({"colour": "red"}, "unknown key"),
        ({"intent_groups": {"teleport": "x"}}, "unknown intent"),
        ({"intent_groups": ["returns"]}, "keyed by intent"),
        ({"intent_groups": {"warranty": ""}}, "non-empty name"),
        ({"priority": {"warranty": "high"}}, "whole number"),
        ({"priority": {"warranty": True}}, "whole number"),
        ({"language_required": "yes"}, "true or false"),
    ],
)
def test_bad_rules_are_config_errors(data: Any, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        routing_rules_from_dict(data)


def test_an_unreadable_rules_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "routing.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"routing\.json"):
        load_routing_rules(tmp_path)
    (tmp_path / "routing.json").write_text(json.dumps({"priority": {"warranty": 5}}), encoding="utf-8")
    assert dict(load_routing_rules(tmp_path).priority) == {"warranty": 5}


# --- rules saved on the Settings page ----------------------------------------------------------------------


def _person(session: Session, role: Role) -> Agent:
    person = Agent(username=f"{role}-{next(_counter)}", display_name=str(role), role=role)
    session.add(person)
    session.flush()
    return person


def test_saved_rules_replace_the_file_and_reprioritise_waiting_conversations(session: Session) -> None:
    store = _store(session)
    lead = _person(session, Role.LEAD)
    waiting = _conversation(session, store, intent="warranty")
    done = _conversation(session, store, intent="warranty")
    done.status = ConversationStatus.CLOSED
    cancel = _conversation(session, store, intent="cancel_order")
    cancel.priority = 10
    assert current_routing_rules(session, REPO_ROOT / "knowledge") == load_routing_rules(REPO_ROOT / "knowledge")

    data = {"intent_groups": {"warranty": "returns"}, "priority": {"warranty": 7}, "language_required": False}
    saved = save_routing_rules(session, principal_for(lead), data, knowledge_dir=REPO_ROOT / "knowledge")
    session.expire_all()
    assert current_routing_rules(session, REPO_ROOT / "knowledge") == saved
    assert routing_rules_to_dict(saved) == data
    assert (waiting.priority, done.priority, cancel.priority) == (7, 0, 0)  # cancel_order is no longer listed
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "routing.update")).one()
    assert event.actor_id == lead.id and event.after == data
    assert event.before is not None and event.before["intent_groups"]["damaged_defective"] == "returns"


def test_saving_rules_needs_a_lead_and_valid_rules(session: Session) -> None:
    agent, lead = _person(session, Role.AGENT), _person(session, Role.LEAD)
    with pytest.raises(PermissionDenied, match="lead"):
        save_routing_rules(session, principal_for(agent), {}, knowledge_dir=REPO_ROOT / "knowledge")
    with pytest.raises(InputError, match="whole number"):
        save_routing_rules(
            session, principal_for(lead), {"priority": {"warranty": "high"}}, knowledge_dir=REPO_ROOT / "knowledge"
        )
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "routing.update")).first() is None


def test_new_conversations_take_their_priority_from_the_saved_rules(
    session: Session, fake_components: Components
) -> None:
    store = _store(session)
    lead = _person(session, Role.LEAD)
    store_mail(session, store, relay_mail(), source="test")
    process_pending(session, fake_components)
    conversation = session.scalars(select(Conversation)).one()
    assert conversation.intent is not None
    data = {"priority": {conversation.intent: 42}}
    rules = save_routing_rules(session, principal_for(lead), data, knowledge_dir=REPO_ROOT / "knowledge")
    assert conversation.priority == 42  # waiting conversations follow at once
    store_mail(session, store, relay_mail(message_id="<again@x>", order_id="305-0000000-0000009"), source="t2")
    process_pending(session, fake_components, rules=rules)
    newest = session.scalars(select(Conversation).order_by(Conversation.id.desc())).first()
    assert newest is not None and newest.id != conversation.id
    assert newest.priority == (42 if newest.intent == conversation.intent else 0)

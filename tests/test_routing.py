"""Routing: store permission, availability, capacity, language, skill group, priority, round-robin."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from engine.workflow.routing import (
    AgentProfile,
    Assignment,
    ConversationToRoute,
    RoutingRules,
    priority_of,
    route,
)

T0 = datetime(2026, 3, 28, 10, 0, tzinfo=UTC)


def agent(
    id: int,
    name: str,
    *,
    stores: set[int] | None = None,
    languages: set[str] | None = None,
    groups: set[str] | None = None,
    capacity: int = 3,
    open_count: int = 0,
    available: bool = True,
) -> AgentProfile:
    return AgentProfile(
        id=id,
        name=name,
        available=available,
        store_ids=frozenset({1} if stores is None else stores),
        languages=frozenset({"en"} if languages is None else languages),
        intent_groups=frozenset(groups or ()),
        capacity=capacity,
        open_count=open_count,
    )


MIA = agent(1, "Mia", languages={"de", "en"}, groups={"returns"})
BEN = agent(2, "Ben")
ANA = agent(3, "Ana", stores={1, 2}, languages={"en", "es"}, groups={"technical"}, capacity=1)
OFF = agent(4, "Olaf", languages={"de"}, available=False)
TEAM = [MIA, BEN, ANA, OFF]

RULES = RoutingRules(
    intent_groups={"return_refund": "returns", "damaged_defective": "returns", "product_question": "technical"}
)
LENIENT = replace(RULES, language_required=False)


def conversation(
    id: int = 100, *, store: int = 1, language: str = "en", intent: str = "order_status", age_h: float = 0
) -> ConversationToRoute:
    return ConversationToRoute(
        id=id, store_id=store, language=language, intent=intent, received_at=T0 - timedelta(hours=age_h)
    )


@pytest.mark.parametrize(
    ("conv", "agents", "rules", "last", "expected_agent", "reason_part"),
    [
        pytest.param(conversation(language="de", intent="return_refund"), TEAM, RULES, None, 1, "speaks de",
                     id="german-return-to-german-specialist"),
        pytest.param(conversation(intent="return_refund"), TEAM, RULES, 2, 1, "handles returns",
                     id="skill-beats-round-robin"),
        pytest.param(conversation(intent="product_question"), TEAM, RULES, None, 3, "handles technical",
                     id="technical-specialist"),
        pytest.param(conversation(), TEAM, RULES, None, 1, "round-robin among 3", id="ungrouped-first-in-turn"),
        pytest.param(conversation(), TEAM, RULES, 1, 2, "Assigned to Ben", id="round-robin-continues"),
        pytest.param(conversation(), TEAM, RULES, 3, 1, "Assigned to Mia", id="round-robin-wraps"),
        pytest.param(conversation(), TEAM, RULES, 99, 1, "Assigned to Mia", id="unknown-last-wraps"),
        pytest.param(conversation(language="es"), TEAM, RULES, None, 3, "speaks es", id="only-speaker"),
        pytest.param(conversation(language="pl"), TEAM, RULES, None, None, "speaks pl", id="nobody-speaks-strict"),
        pytest.param(conversation(language="pl"), TEAM, LENIENT, 1, 2, "nobody free speaks pl",
                     id="nobody-speaks-lenient-falls-back"),
        pytest.param(conversation(store=3), TEAM, RULES, None, None, "no agent is permitted on store 3",
                     id="store-without-agents"),
        pytest.param(conversation(store=2, language="es"), TEAM, RULES, None, 3, "speaks es", id="other-store"),
        pytest.param(conversation(language="de"), [OFF], RULES, None, None, "is available", id="nobody-available"),
        pytest.param(conversation(), [replace(BEN, open_count=3)], RULES, None, None, "at capacity",
                     id="everyone-full"),
        pytest.param(conversation(), [replace(BEN, open_count=5, capacity=3)], RULES, None, None, "at capacity",
                     id="over-capacity-counts-as-full"),
        pytest.param(conversation(), [replace(BEN, capacity=0)], RULES, None, None, "at capacity",
                     id="zero-capacity"),
        pytest.param(conversation(language="de", intent="product_question"), TEAM, RULES, None, 1,
                     "no technical specialist or generalist free", id="only-other-specialist-left"),
        pytest.param(conversation(intent="product_question"), [MIA, BEN, replace(ANA, open_count=1)], RULES,
                     None, 2, "generalist", id="generalist-before-other-specialist"),
        pytest.param(conversation(language="es", intent="return_refund"), TEAM, RULES, None, 3,
                     "no returns specialist", id="language-before-skill"),
        pytest.param(conversation(), [agent(5, "Zoe", languages=set())], LENIENT, None, 5, "nobody free speaks",
                     id="agent-without-languages-only-by-fallback"),
    ],
)  # fmt: skip
def test_route_single(
    conv: ConversationToRoute,
    agents: list[AgentProfile],
    rules: RoutingRules,
    last: int | None,
    expected_agent: int | None,
    reason_part: str,
) -> None:
    [assignment] = route([conv], agents, rules, last_assigned_agent_id=last)
    assert assignment.conversation_id == conv.id
    assert assignment.agent_id == expected_agent
    assert reason_part in assignment.reason
    assert assignment.reason.startswith("Unassigned" if expected_agent is None else "Assigned to")


def test_priority_then_oldest_then_id() -> None:
    conversations = [
        conversation(1, intent="order_status", age_h=20),
        conversation(2, intent="cancel_order", age_h=1),
        conversation(3, intent="damaged_defective", age_h=5),
        conversation(4, intent="order_status", age_h=20),  # same age as 1: lower id first
        conversation(5, intent="product_question", age_h=30),
    ]
    assignments = route(conversations, [agent(1, "A", capacity=10)], RULES)
    assert [a.conversation_id for a in assignments] == [3, 2, 5, 1, 4]


def test_round_robin_spreads_work_and_respects_capacity() -> None:
    agents = [agent(1, "A", capacity=3), agent(2, "B", capacity=3, open_count=1)]
    conversations = [conversation(i, age_h=10 - i) for i in range(1, 7)]
    assignments = route(conversations, agents, RULES)
    assert [a.agent_id for a in assignments] == [1, 2, 1, 2, 1, None]
    assert "at capacity" in assignments[-1].reason


def test_capacity_used_within_a_run_sends_later_work_elsewhere() -> None:
    conversations = [conversation(1, language="es", age_h=2), conversation(2, language="es", age_h=1)]
    first, second = route(conversations, TEAM, RULES)
    assert (first.agent_id, second.agent_id) == (3, None)
    assert "speaks es" in second.reason
    first, second = route(conversations, TEAM, LENIENT)
    assert (first.agent_id, second.agent_id) == (3, 1)


def test_round_robin_continues_across_runs() -> None:
    agents = [agent(1, "A", capacity=9), agent(2, "B", capacity=9), agent(3, "C", capacity=9)]
    first_run = route([conversation(1)], agents, RULES)
    second_run = route([conversation(2)], agents, RULES, last_assigned_agent_id=first_run[-1].agent_id)
    assert (first_run[0].agent_id, second_run[0].agent_id) == (1, 2)


def test_route_is_deterministic_whatever_the_input_order() -> None:
    conversations = [conversation(i, intent=intent, age_h=i % 4) for i, intent in enumerate(
        ["order_status", "cancel_order", "return_refund", "product_question", "order_status", "other"] * 2
    )]  # fmt: skip
    expected = route(conversations, TEAM, LENIENT, last_assigned_agent_id=2)
    shuffled = route(conversations[::-1], TEAM[::-1], LENIENT, last_assigned_agent_id=2)
    assert shuffled == expected
    assert all(isinstance(a, Assignment) for a in expected)


def test_agents_are_not_modified() -> None:
    route([conversation(1), conversation(2)], TEAM, RULES)
    assert (MIA.open_count, BEN.open_count) == (0, 0)


def test_no_conversations_no_assignments() -> None:
    assert route([], TEAM, RULES) == []


@pytest.mark.parametrize(
    ("intent", "rules", "expected"),
    [
        ("cancel_order", RoutingRules(), 10),
        ("damaged_defective", RoutingRules(), 10),
        ("order_status", RoutingRules(), 0),
        ("complaint_feedback", RoutingRules(priority={"complaint_feedback": 5}), 5),
        ("cancel_order", RoutingRules(priority={"complaint_feedback": 5}), 0),  # custom table replaces defaults
    ],
)
def test_priority_of(intent: str, rules: RoutingRules, expected: int) -> None:
    assert priority_of(intent, rules) == expected

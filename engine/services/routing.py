"""Routing new conversations to agents, in the database: the pure rules of `engine.workflow.routing` over
the active agents and the open, unassigned, classified conversations.

Round-robin stays fair across runs: the last agent the system assigned is read back from the newest
system-written `conversation.assign` audit event, so no extra state is kept.

The team's rules live in the database (`team_setting`, edited by leads on the Settings page) so every app and
worker process sees the same ones; until someone saves them, `knowledge/routing.json` supplies the defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from engine.db.models import Agent, AuditEvent, Conversation, ConversationStatus, TeamSetting
from engine.errors import ConfigError, InputError
from engine.services import audit
from engine.taxonomy import INTENTS
from engine.workflow.permissions import Action, Principal, require
from engine.workflow.routing import (
    DEFAULT_PRIORITY,
    AgentProfile,
    Assignment,
    ConversationToRoute,
    RoutingRules,
    route,
)

ROUTING_FILE = "routing.json"
ROUTING_SETTING = "routing_rules"  # the team_setting key
ASSIGN_ACTION = "conversation.assign"
DEFAULT_ROUTING_RULES = RoutingRules(intent_groups={}, priority=dict(DEFAULT_PRIORITY), language_required=True)
# Conversations an agent still has on their plate, counted against their capacity.
_OPEN_STATUSES = (ConversationStatus.OPEN, ConversationStatus.HOLD)
# How many recent system assignments to look through for the last assigned agent.
_RECENT_EVENTS = 50


def load_routing_rules(knowledge_dir: Path) -> RoutingRules:
    """The rules in `<knowledge_dir>/routing.json`; the defaults when there is no such file."""
    path = knowledge_dir / ROUTING_FILE
    if not path.exists():
        return DEFAULT_ROUTING_RULES
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read the routing rules in {path}: {exc}. Fix the file or remove it.") from exc
    return routing_rules_from_dict(data, source=str(path))


def current_routing_rules(session: Session, knowledge_dir: Path) -> RoutingRules:
    """The rules saved on the Settings page; before anyone saved them, those in `knowledge_dir`."""
    saved = session.get(TeamSetting, ROUTING_SETTING)
    if saved is None:
        return load_routing_rules(knowledge_dir)
    return routing_rules_from_dict(saved.value, source="The saved routing rules (Settings page)")


def routing_rules_to_dict(rules: RoutingRules) -> dict[str, Any]:
    return {
        "intent_groups": dict(sorted(rules.intent_groups.items())),
        "priority": dict(sorted(rules.priority.items())),
        "language_required": rules.language_required,
    }


def save_routing_rules(
    session: Session, principal: Principal, data: Mapping[str, Any], *, knowledge_dir: Path
) -> RoutingRules:
    """Validate and save the team's routing rules (leads and admins), and re-prioritise the conversations
    still waiting so the queue follows the new priorities at once. Audited with the rules before and after."""
    require(principal, Action.MANAGE_ROUTING)
    try:
        rules = routing_rules_from_dict(data, source="The routing rules")
    except ConfigError as exc:
        raise InputError(str(exc)) from exc
    before = routing_rules_to_dict(current_routing_rules(session, knowledge_dir))
    after = routing_rules_to_dict(rules)
    saved = session.get(TeamSetting, ROUTING_SETTING)
    if saved is None:
        session.add(TeamSetting(key=ROUTING_SETTING, value=after, updated_by_id=principal.agent_id))
    else:
        saved.value, saved.updated_by_id = after, principal.agent_id
    waiting = Conversation.status.in_(_OPEN_STATUSES)
    priority = case(dict(rules.priority), value=Conversation.intent, else_=0) if rules.priority else 0
    session.execute(update(Conversation).where(waiting).values(priority=priority))
    audit.record(
        session, "routing.update", "team_setting", None, actor_id=principal.agent_id, before=before, after=after
    )
    session.flush()
    return rules


def routing_rules_from_dict(data: Any, *, source: str = "routing rules") -> RoutingRules:
    """Validate {"intent_groups": {intent: group}, "priority": {intent: int}, "language_required": bool}."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source} must be a JSON object with intent_groups, priority and language_required.")
    unknown = set(data) - {"about", "intent_groups", "priority", "language_required"}
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {sorted(unknown)}; allowed: intent_groups, priority, language_required."
        )
    groups = _intent_map(data.get("intent_groups", {}), "intent_groups", source)
    for intent, group in groups.items():
        if not isinstance(group, str) or not group.strip():
            raise ConfigError(f"{source}: the skill group of {intent!r} must be a non-empty name such as 'returns'.")
    priority = _intent_map(data.get("priority", dict(DEFAULT_PRIORITY)), "priority", source)
    for intent, value in priority.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{source}: the priority of {intent!r} must be a whole number, got {value!r}.")
    language_required = data.get("language_required", True)
    if not isinstance(language_required, bool):
        raise ConfigError(f"{source}: language_required must be true or false, got {language_required!r}.")
    return RoutingRules(
        intent_groups={i: g.strip() for i, g in groups.items()},
        priority=dict(priority),
        language_required=language_required,
    )


def _intent_map(value: Any, key: str, source: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: {key} must be an object keyed by intent id.")
    wrong = sorted(str(intent) for intent in value if intent not in INTENTS)
    if wrong:
        raise ConfigError(f"{source}: unknown intent(s) {wrong} in {key}; use ids from knowledge/taxonomy.json.")
    return value


def route_new_conversations(session: Session, *, now: datetime, rules: RoutingRules | None = None) -> list[Assignment]:
    """Assign every open, unassigned conversation with a classified intent; one Assignment per conversation
    (agent_id None when nobody fits, with the reason). Conversations an agent has claimed are left alone:
    they are already being handled."""
    rules = DEFAULT_ROUTING_RULES if rules is None else rules
    conversations = _unrouted(session, now)
    if not conversations:
        return []
    assignments = route(
        [_to_route(c) for c in conversations],
        _agent_profiles(session),
        rules,
        last_assigned_agent_id=last_routed_agent_id(session),
    )
    by_id = {c.id: c for c in conversations}
    for assignment in assignments:
        if assignment.agent_id is None:
            continue
        conversation = by_id[assignment.conversation_id]
        conversation.assignee_id = assignment.agent_id
        audit.record(
            session,
            ASSIGN_ACTION,
            "conversation",
            conversation.id,
            actor_id=None,
            before={"assignee_id": None},
            after={"assignee_id": assignment.agent_id, "reason": assignment.reason},
        )
    session.flush()
    return assignments


def routing_summary(assignments: list[Assignment]) -> str:
    """One line for the CLI: how many conversations were assigned and how many are left unassigned."""
    assigned = sum(1 for a in assignments if a.agent_id is not None)
    line = f"routing: {assigned} of {len(assignments)} new conversations assigned"
    left = len(assignments) - assigned
    return line + (f", {left} left unassigned (see the queue)" if left else "")


def _unrouted(session: Session, now: datetime) -> list[Conversation]:
    query = (
        select(Conversation)
        .where(
            Conversation.status == ConversationStatus.OPEN,
            Conversation.assignee_id.is_(None),
            Conversation.intent.is_not(None),
            or_(Conversation.claim_expires_at.is_(None), Conversation.claim_expires_at <= now),
        )
        .order_by(Conversation.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Two routing runs at once each take the rows the other has not locked: nothing is assigned twice.
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def _to_route(conversation: Conversation) -> ConversationToRoute:
    assert conversation.intent is not None  # selected on it
    received = conversation.awaiting_since or conversation.last_message_at or conversation.created_at
    return ConversationToRoute(
        id=conversation.id,
        store_id=conversation.store_id,
        language=conversation.language or "",
        intent=conversation.intent,
        received_at=received,
    )


def _agent_profiles(session: Session) -> list[AgentProfile]:
    counted = session.execute(
        select(Conversation.assignee_id, func.count())
        .where(Conversation.assignee_id.is_not(None), Conversation.status.in_(_OPEN_STATUSES))
        .group_by(Conversation.assignee_id)
    )
    open_counts = {agent_id: count for agent_id, count in counted if agent_id is not None}
    agents = session.scalars(
        select(Agent).where(Agent.active.is_(True)).options(selectinload(Agent.stores)).order_by(Agent.id)
    )
    return [
        AgentProfile(
            id=agent.id,
            name=agent.display_name,
            available=bool(agent.available),
            store_ids=frozenset(store.id for store in agent.stores),
            languages=frozenset(agent.languages or []),
            intent_groups=frozenset(agent.intent_groups or []),
            capacity=agent.capacity,
            open_count=open_counts.get(agent.id, 0),
        )
        for agent in agents
    ]


def last_routed_agent_id(session: Session) -> int | None:
    """The agent the system assigned most recently, from the audit trail; None before the first run."""
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == ASSIGN_ACTION, AuditEvent.actor_id.is_(None))
        .order_by(AuditEvent.id.desc())
        .limit(_RECENT_EVENTS)
    )
    for event in events:
        agent_id = (event.after or {}).get("assignee_id")
        if isinstance(agent_id, int) and not isinstance(agent_id, bool):
            return agent_id
    return None

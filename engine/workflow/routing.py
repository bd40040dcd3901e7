"""Assigning conversations to agents: permitted stores, capacity, language and skill, then round-robin.

Order of work: higher priority first, then oldest first (closest to Amazon's deadline), then by id.
For each conversation the candidates are agents who are available, permitted on its store and under
capacity. Among them:
1. language: agents who list the conversation's language. If nobody does, `language_required`
   leaves the conversation unassigned; otherwise any candidate may take it (translate-then-review).
   An agent with no languages listed speaks none for routing purposes.
2. skill: agents in the intent's skill group beat generalists (no groups), who beat specialists of
   other groups. Intents without a group treat everybody alike.
3. round-robin among the best: the next agent id after the last one assigned, wrapping around.
Each assignment counts against the agent's capacity for the rest of the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

# Cancellations must be acted on before the order ships; damaged items are the buyers most likely
# to open an A-to-z claim. Both jump the queue by default.
DEFAULT_PRIORITY: Mapping[str, int] = MappingProxyType({"cancel_order": 10, "damaged_defective": 10})


@dataclass(frozen=True)
class AgentProfile:
    id: int
    name: str
    available: bool
    store_ids: frozenset[int]
    languages: frozenset[str]
    intent_groups: frozenset[str]  # skill groups such as {"returns", "technical"}; empty = generalist
    capacity: int  # max open conversations
    open_count: int


@dataclass(frozen=True)
class ConversationToRoute:
    id: int
    store_id: int
    language: str
    intent: str
    received_at: datetime


@dataclass(frozen=True)
class RoutingRules:
    intent_groups: Mapping[str, str] = field(default_factory=dict)  # intent -> skill group
    # intent -> priority, higher first; intents not listed are 0
    priority: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PRIORITY))
    language_required: bool = True  # True: nobody speaks it -> unassigned; False: anyone permitted


@dataclass(frozen=True)
class Assignment:
    conversation_id: int
    agent_id: int | None
    reason: str  # shown to the agent/lead as is


def priority_of(intent: str, rules: RoutingRules) -> int:
    return rules.priority.get(intent, 0)


def route(
    conversations: Sequence[ConversationToRoute],
    agents: Sequence[AgentProfile],
    rules: RoutingRules,
    *,
    last_assigned_agent_id: int | None = None,
) -> list[Assignment]:
    """One assignment per conversation, in the order they were processed (priority, then oldest)."""
    open_counts = {agent.id: agent.open_count for agent in agents}
    queue = sorted(conversations, key=lambda c: (-priority_of(c.intent, rules), c.received_at, c.id))
    assignments: list[Assignment] = []
    last = last_assigned_agent_id
    for conversation in queue:
        assignment = _assign_one(conversation, agents, rules, open_counts, last)
        if assignment.agent_id is not None:
            open_counts[assignment.agent_id] += 1
            last = assignment.agent_id
        assignments.append(assignment)
    return assignments


def _assign_one(
    conversation: ConversationToRoute,
    agents: Sequence[AgentProfile],
    rules: RoutingRules,
    open_counts: Mapping[int, int],
    last: int | None,
) -> Assignment:
    on_store = [a for a in agents if conversation.store_id in a.store_ids]
    available = [a for a in on_store if a.available]
    candidates = [a for a in available if open_counts[a.id] < a.capacity]
    if not candidates:
        if not on_store:
            why = f"no agent is permitted on store {conversation.store_id}"
        elif not available:
            why = f"no agent for store {conversation.store_id} is available"
        else:
            why = f"every available agent for store {conversation.store_id} is at capacity"
        return Assignment(conversation.id, None, f"Unassigned: {why}.")

    notes: list[str] = []
    speakers = [a for a in candidates if conversation.language in a.languages]
    if speakers:
        candidates = speakers
        notes.append(f"speaks {conversation.language}")
    elif rules.language_required:
        return Assignment(
            conversation.id,
            None,
            f"Unassigned: no available agent with free capacity speaks {conversation.language}; "
            "assign it by hand or allow routing without the language.",
        )
    else:
        notes.append(f"nobody free speaks {conversation.language}, so any permitted agent")

    group = rules.intent_groups.get(conversation.intent)
    if group is not None:
        candidates, skill_note = _best_skill_tier(candidates, group)
        notes.append(skill_note)

    chosen = _next_in_rotation(candidates, last)
    if len(candidates) > 1:
        notes.append(f"round-robin among {len(candidates)}")
    return Assignment(conversation.id, chosen.id, f"Assigned to {chosen.name}: {', '.join(notes)}.")


def _best_skill_tier(candidates: list[AgentProfile], group: str) -> tuple[list[AgentProfile], str]:
    specialists = [a for a in candidates if group in a.intent_groups]
    if specialists:
        return specialists, f"handles {group}"
    generalists = [a for a in candidates if not a.intent_groups]
    if generalists:
        return generalists, f"generalist (no {group} specialist free)"
    return candidates, f"no {group} specialist or generalist free"


def _next_in_rotation(candidates: list[AgentProfile], last: int | None) -> AgentProfile:
    """The candidate with the smallest id after `last`, wrapping around to the smallest id."""
    ordered = sorted(candidates, key=lambda a: a.id)
    if last is not None:
        for agent in ordered:
            if agent.id > last:
                return agent
    return ordered[0]

"""Who may do what: three nested roles, plus the stores each person is assigned to.

- agent: the queue of their stores — view, approve/edit/reject/send, no response needed, hold, note,
  tag, correct the intent.
- lead: everything an agent may, plus knowledge base, templates, intent examples, retraining,
  routing, statistics and evals.
- admin: everything, on every store, plus stores, mailboxes and credentials, users and settings.

Whenever a store is named, agents and leads must be assigned to it; admins see all stores.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from engine.errors import PermissionDenied


class Role(StrEnum):
    AGENT = "agent"
    LEAD = "lead"
    ADMIN = "admin"


class Action(StrEnum):
    VIEW_QUEUE = "view_queue"
    ACT_ON_CONVERSATION = "act_on_conversation"  # approve/edit/reject, NRN, hold, note, tag, intent
    SEND_REPLY = "send_reply"
    EDIT_KNOWLEDGE = "edit_knowledge"
    EDIT_TEMPLATES = "edit_templates"
    EDIT_INTENT_EXAMPLES = "edit_intent_examples"
    RETRAIN = "retrain"
    VIEW_STATISTICS = "view_statistics"
    RUN_EVALS = "run_evals"
    MANAGE_ROUTING = "manage_routing"
    MANAGE_STORES = "manage_stores"  # stores, mailboxes and their credentials
    MANAGE_USERS = "manage_users"
    MANAGE_SETTINGS = "manage_settings"


_RANK = {Role.AGENT: 0, Role.LEAD: 1, Role.ADMIN: 2}

MINIMUM_ROLE: dict[Action, Role] = {
    Action.VIEW_QUEUE: Role.AGENT,
    Action.ACT_ON_CONVERSATION: Role.AGENT,
    Action.SEND_REPLY: Role.AGENT,
    Action.EDIT_KNOWLEDGE: Role.LEAD,
    Action.EDIT_TEMPLATES: Role.LEAD,
    Action.EDIT_INTENT_EXAMPLES: Role.LEAD,
    Action.RETRAIN: Role.LEAD,
    Action.VIEW_STATISTICS: Role.LEAD,
    Action.RUN_EVALS: Role.LEAD,
    Action.MANAGE_ROUTING: Role.LEAD,
    Action.MANAGE_STORES: Role.ADMIN,
    Action.MANAGE_USERS: Role.ADMIN,
    Action.MANAGE_SETTINGS: Role.ADMIN,
}

_DESCRIPTION: dict[Action, str] = {
    Action.VIEW_QUEUE: "viewing the queue",
    Action.ACT_ON_CONVERSATION: "working on conversations",
    Action.SEND_REPLY: "sending replies",
    Action.EDIT_KNOWLEDGE: "editing the knowledge base",
    Action.EDIT_TEMPLATES: "editing templates",
    Action.EDIT_INTENT_EXAMPLES: "editing intent examples",
    Action.RETRAIN: "retraining the intent classifier",
    Action.VIEW_STATISTICS: "viewing statistics",
    Action.RUN_EVALS: "running evals",
    Action.MANAGE_ROUTING: "managing routing",
    Action.MANAGE_STORES: "managing stores and mailboxes",
    Action.MANAGE_USERS: "managing users",
    Action.MANAGE_SETTINGS: "changing settings",
}


@dataclass(frozen=True)
class Principal:
    agent_id: int
    role: Role
    store_ids: frozenset[int]  # ignored for admins, who see every store


def minimum_role(action: Action) -> Role:
    return MINIMUM_ROLE[action]


def has_store(principal: Principal, store_id: int) -> bool:
    return principal.role is Role.ADMIN or store_id in principal.store_ids


def is_allowed(principal: Principal, action: Action, *, store_id: int | None = None) -> bool:
    if _RANK[principal.role] < _RANK[MINIMUM_ROLE[action]]:
        return False
    return store_id is None or has_store(principal, store_id)


def require(principal: Principal, action: Action, *, store_id: int | None = None) -> None:
    """Raise PermissionDenied saying which role or store assignment is missing."""
    needed = MINIMUM_ROLE[action]
    if _RANK[principal.role] < _RANK[needed]:
        raise PermissionDenied(
            f"{_DESCRIPTION[action].capitalize()} needs the {needed} role; you are {principal.role}. "
            "Ask an admin if you need it."
        )
    if store_id is not None and not has_store(principal, store_id):
        raise PermissionDenied(
            f"You are not assigned to store {store_id}, so {_DESCRIPTION[action]} there is not allowed. "
            "Ask an admin to add you to the store."
        )


def visible_store_ids(principal: Principal, all_store_ids: Iterable[int]) -> frozenset[int]:
    """The stores whose queue and data the principal may see."""
    return frozenset(s for s in all_store_ids if has_store(principal, s))

"""Roles and store assignments."""

from __future__ import annotations

import pytest

from engine.errors import PermissionDenied
from engine.workflow.permissions import (
    Action,
    Principal,
    Role,
    is_allowed,
    minimum_role,
    require,
    visible_store_ids,
)

AGENT = Principal(agent_id=1, role=Role.AGENT, store_ids=frozenset({1, 2}))
LEAD = Principal(agent_id=2, role=Role.LEAD, store_ids=frozenset({1}))
ADMIN = Principal(agent_id=3, role=Role.ADMIN, store_ids=frozenset())

AGENT_ACTIONS = {Action.VIEW_QUEUE, Action.ACT_ON_CONVERSATION, Action.SEND_REPLY}
LEAD_ACTIONS = AGENT_ACTIONS | {
    Action.EDIT_KNOWLEDGE,
    Action.EDIT_TEMPLATES,
    Action.EDIT_INTENT_EXAMPLES,
    Action.RETRAIN,
    Action.VIEW_STATISTICS,
    Action.RUN_EVALS,
    Action.MANAGE_ROUTING,
}
ADMIN_ACTIONS = set(Action)


@pytest.mark.parametrize(
    ("principal", "allowed"), [(AGENT, AGENT_ACTIONS), (LEAD, LEAD_ACTIONS), (ADMIN, ADMIN_ACTIONS)]
)
@pytest.mark.parametrize("action", list(Action))
def test_role_matrix_without_store(principal: Principal, allowed: set[Action], action: Action) -> None:
    assert is_allowed(principal, action) is (action in allowed)


@pytest.mark.parametrize(
    ("principal", "action", "store_id", "expected"),
    [
        (AGENT, Action.SEND_REPLY, 1, True),
        (AGENT, Action.SEND_REPLY, 2, True),
        (AGENT, Action.SEND_REPLY, 3, False),  # not assigned to that store
        (AGENT, Action.VIEW_QUEUE, 3, False),
        (AGENT, Action.EDIT_TEMPLATES, 1, False),  # role too low even on an own store
        (LEAD, Action.EDIT_KNOWLEDGE, 1, True),
        (LEAD, Action.EDIT_KNOWLEDGE, 2, False),
        (LEAD, Action.VIEW_STATISTICS, 2, False),
        (LEAD, Action.MANAGE_STORES, 1, False),
        (ADMIN, Action.SEND_REPLY, 42, True),  # admins see every store
        (ADMIN, Action.MANAGE_STORES, 42, True),
    ],
)
def test_store_scoping(principal: Principal, action: Action, store_id: int, expected: bool) -> None:
    assert is_allowed(principal, action, store_id=store_id) is expected


@pytest.mark.parametrize(
    ("principal", "action", "store_id", "message"),
    [
        (AGENT, Action.EDIT_TEMPLATES, None, "Editing templates needs the lead role; you are agent."),
        (AGENT, Action.MANAGE_USERS, None, "Managing users needs the admin role; you are agent."),
        (LEAD, Action.MANAGE_SETTINGS, None, "Changing settings needs the admin role; you are lead."),
        (LEAD, Action.SEND_REPLY, 2, "You are not assigned to store 2, so sending replies there"),
        (AGENT, Action.MANAGE_STORES, 1, "needs the admin role"),  # the role is the first thing to fix
    ],
)
def test_require_explains_what_is_missing(
    principal: Principal, action: Action, store_id: int | None, message: str
) -> None:
    with pytest.raises(PermissionDenied, match=message) as caught:
        require(principal, action, store_id=store_id)
    assert caught.value.code == "permission"
    assert "Ask an admin" in str(caught.value)


def test_require_passes_silently_when_allowed() -> None:
    require(LEAD, Action.RUN_EVALS, store_id=1)
    require(ADMIN, Action.MANAGE_USERS)
    require(AGENT, Action.SEND_REPLY, store_id=2)


def test_every_action_has_a_minimum_role() -> None:
    assert {minimum_role(action) for action in Action} == set(Role)


@pytest.mark.parametrize(("principal", "expected"), [(AGENT, {1, 2}), (LEAD, {1}), (ADMIN, {1, 2, 3, 4})])
def test_visible_store_ids(principal: Principal, expected: set[int]) -> None:
    assert visible_store_ids(principal, [1, 2, 3, 4]) == expected

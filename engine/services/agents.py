"""Agents (users), their stores and roles, and local-password login."""

from __future__ import annotations

from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Agent, Store
from engine.errors import InputError, PermissionDenied
from engine.workflow.permissions import Principal, Role

_hasher = PasswordHasher()


def principal_for(agent: Agent) -> Principal:
    return Principal(agent_id=agent.id, role=Role(agent.role), store_ids=frozenset(s.id for s in agent.stores))


def create_agent(
    session: Session,
    username: str,
    *,
    password: str,
    role: Role = Role.AGENT,
    display_name: str | None = None,
    stores: Sequence[Store] = (),
    languages: Sequence[str] = (),
    ui_language: str = "en",
) -> Agent:
    if session.scalar(select(Agent).where(Agent.username == username)) is not None:
        raise InputError(f"User {username!r} exists already. Pick another username.")
    if len(password) < 8:
        raise InputError("Passwords need at least 8 characters.")
    agent = Agent(
        username=username,
        display_name=display_name or username,
        password_hash=_hasher.hash(password),
        role=role,
        languages=list(languages),
        intent_groups=[],
        ui_language=ui_language,
    )
    agent.stores = list(stores)
    session.add(agent)
    session.flush()
    return agent


def authenticate(session: Session, username: str, password: str) -> Agent:
    agent = session.scalar(select(Agent).where(Agent.username == username, Agent.active.is_(True)))
    try:
        if agent is None or not _hasher.verify(agent.password_hash, password):
            raise VerificationError
    except (VerificationError, InvalidHashError):
        raise PermissionDenied("Wrong username or password. Try again or ask an admin to reset it.") from None
    return agent

"""Agents (users): accounts, their stores, roles and routing skills, admins' edits, and local-password login."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Agent, Store
from engine.errors import InputError, PermissionDenied
from engine.services import audit
from engine.taxonomy import LANGUAGES
from engine.workflow.permissions import Action, Principal, Role, require

_hasher = PasswordHasher()
MAX_CAPACITY = 1000
MIN_PASSWORD_LENGTH = 8
# Checked when a username is unknown, so that a wrong username costs as long as a wrong password.
_UNKNOWN_USER_HASH = _hasher.hash("no such account")


@dataclass(frozen=True)
class NewPassword:
    """A password checked and hashed before any transaction opens (argon2 takes tens of milliseconds, and on
    SQLite a write transaction holds the only write lock). `NewPassword.none()`: single sign-on only."""

    hash: str

    @classmethod
    def of(cls, password: str) -> NewPassword:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InputError(
                f"Passwords need at least {MIN_PASSWORD_LENGTH} characters "
                "(or none, for a single sign-on only account)."
            )
        return cls(_hasher.hash(password))

    @classmethod
    def none(cls) -> NewPassword:
        return cls("")  # an empty hash never verifies

    @classmethod
    def optional(cls, password: str | None) -> NewPassword | None:
        """None for an empty field (keep the current password); otherwise checked and hashed."""
        return cls.of(password) if password else None


def fold_username(name: str) -> str:
    """The one case-folding rule for usernames and single sign-on e-mails: NFKC, then casefold (the Kelvin sign
    and the letter K fold alike, unlike SQL lower()), then NFKC again, since casefold can undo it."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name.strip()).casefold())


def principal_for(agent: Agent) -> Principal:
    return Principal(agent_id=agent.id, role=Role(agent.role), store_ids=frozenset(s.id for s in agent.stores))


def create_agent(
    session: Session,
    username: str,
    *,
    password: NewPassword,
    role: Role = Role.AGENT,
    display_name: str | None = None,
    stores: Sequence[Store] = (),
    languages: Sequence[str] = (),
    ui_language: str = "en",
    demo: bool = False,
) -> Agent:
    """`demo`: a published demo password, flagged until it is changed (the app warns while one is active)."""
    key = fold_username(username)
    if session.scalar(select(Agent).where(Agent.username_key == key).limit(1)) is not None:
        raise InputError(f"User {username!r} exists already (ignoring case). Pick another username.")
    agent = Agent(
        username=username,
        username_key=key,
        demo_password=demo,
        display_name=display_name or username,
        password_hash=password.hash,
        role=role,
        languages=list(languages),
        intent_groups=[],
        ui_language=ui_language,
    )
    agent.stores = list(stores)
    session.add(agent)
    session.flush()
    return agent


def stored_password_hash(session: Session, username: str) -> str | None:
    """The active account's password hash, read so that it can be verified after the transaction."""
    return session.scalar(select(Agent.password_hash).where(Agent.username == username, Agent.active.is_(True)))


def verify_password(stored_hash: str | None, password: str) -> None:
    """Raises PermissionDenied unless `password` matches; call it with no transaction open. An unknown account
    is checked against a dummy hash, so it takes as long as a wrong password."""
    try:
        if not _hasher.verify(stored_hash or _UNKNOWN_USER_HASH, password) or not stored_hash:
            raise VerificationError
    except (VerificationError, InvalidHashError):
        raise PermissionDenied("Wrong username or password. Try again or ask an admin to reset it.") from None


def authenticated_agent(session: Session, username: str, verified_hash: str) -> Agent:
    """The account whose hash was verified, if it still has that hash and is active (it may have changed
    between the check and this transaction)."""
    agent = session.scalar(select(Agent).where(Agent.username == username, Agent.active.is_(True)))
    if agent is None or agent.password_hash != verified_hash:
        raise PermissionDenied("Wrong username or password. Try again or ask an admin to reset it.")
    return agent


@dataclass(frozen=True)
class AgentAccount:
    """An account as the admin's edit form shows it."""

    id: int
    username: str
    display_name: str
    role: Role
    store_ids: list[int]
    languages: list[str]
    intent_groups: list[str]
    capacity: int
    available: bool
    active: bool


def agent_account(session: Session, principal: Principal, agent_id: int) -> AgentAccount:
    require(principal, Action.MANAGE_USERS)
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise InputError(f"Account {agent_id} does not exist (any more); reload the page.")
    return AgentAccount(
        id=agent.id,
        username=agent.username,
        display_name=agent.display_name,
        role=Role(agent.role),
        store_ids=sorted(s.id for s in agent.stores),
        languages=list(agent.languages or []),
        intent_groups=list(agent.intent_groups or []),
        capacity=agent.capacity,
        available=bool(agent.available),
        active=agent.active,
    )


@dataclass(frozen=True)
class AgentChanges:
    """An admin's edit of an account; fields left None stay as they are."""

    display_name: str | None = None
    role: Role | None = None
    store_ids: Sequence[int] | None = None
    languages: Sequence[str] | None = None
    intent_groups: Sequence[str] | None = None
    capacity: int | None = None
    active: bool | None = None
    password: NewPassword | None = None  # a reset; never shown or audited


def update_agent(session: Session, principal: Principal, agent_id: int, changes: AgentChanges) -> Agent:
    """Apply an admin's edit (audited, before and after). An admin cannot demote or deactivate their own
    account, so a team always keeps someone who can undo a mistake."""
    require(principal, Action.MANAGE_USERS)
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise InputError(f"Account {agent_id} does not exist (any more); reload the page.")
    if agent.id == principal.agent_id and (
        (changes.role is not None and changes.role != Role.ADMIN) or changes.active is False
    ):
        raise InputError("You cannot demote or deactivate your own account; ask another admin to do it.")
    before = _account_fields(agent)
    if changes.display_name is not None:
        agent.display_name = changes.display_name.strip() or agent.username
    if changes.role is not None:
        agent.role = Role(changes.role)
    if changes.store_ids is not None:
        stores = list(session.scalars(select(Store).where(Store.id.in_(list(changes.store_ids) or [-1]))))
        missing = set(changes.store_ids) - {s.id for s in stores}
        if missing:
            raise InputError(f"Store(s) {sorted(missing)} do not exist (any more); reload the page.")
        agent.stores = stores
    if changes.languages is not None:
        unknown = sorted(set(changes.languages) - set(LANGUAGES))
        if unknown:
            raise InputError(f"Unknown language(s) {unknown}; use ids from knowledge/taxonomy.json such as de, ja.")
        agent.languages = sorted(set(changes.languages))
    if changes.intent_groups is not None:
        agent.intent_groups = sorted({g.strip() for g in changes.intent_groups if g.strip()})
    if changes.capacity is not None:
        if not 1 <= changes.capacity <= MAX_CAPACITY:
            raise InputError(f"Capacity is the number of open conversations at once: 1 to {MAX_CAPACITY}.")
        agent.capacity = changes.capacity
    if changes.active is not None:
        agent.active = changes.active
    if changes.password:
        agent.password_hash = changes.password.hash
        agent.demo_password = False
    after = _account_fields(agent)
    if changes.password or after["role"] != before["role"] or (before["active"] and not agent.active):
        end_sessions(agent)
    if changes.password:
        after["password"] = "reset"
    audit.record(session, "agent.update", "agent", agent.id, actor_id=principal.agent_id, before=before, after=after)
    session.flush()
    return agent


def end_sessions(agent: Agent) -> None:
    """Sign the account out of every browser: a session remembers the generation it signed in with."""
    agent.session_generation = (agent.session_generation or 0) + 1


def demo_accounts_active(session: Session) -> bool:
    """True while an active account still has its published demo password."""
    found = select(Agent.id).where(Agent.demo_password.is_(True), Agent.active.is_(True)).limit(1)
    return session.scalar(found) is not None


def set_availability(session: Session, principal: Principal, available: bool) -> None:
    """An agent going on a break (or back): routing gives new conversations only to available agents."""
    agent = session.get(Agent, principal.agent_id)
    if agent is None:
        raise InputError("Your account no longer exists; sign in again.")
    if agent.available != available:
        audit.record(
            session,
            "agent.availability",
            "agent",
            agent.id,
            actor_id=agent.id,
            before={"available": agent.available},
            after={"available": available},
        )
        agent.available = available
        session.flush()


def _account_fields(agent: Agent) -> dict[str, Any]:
    return {
        "display_name": agent.display_name,
        "role": str(agent.role),
        "store_ids": sorted(s.id for s in agent.stores),
        "languages": list(agent.languages or []),
        "intent_groups": list(agent.intent_groups or []),
        "capacity": agent.capacity,
        "active": agent.active,
    }

"""API tokens. The plaintext (`rdk_` + 43 random characters) is shown once; only its SHA-256 is stored (a
random 256-bit secret needs no slow hash). Each token acts as its own service agent (`api:<name>`, no
password, never routed to), so its role, stores and audit trail work exactly like a user's; revoking it
deactivates that agent."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.base import utcnow
from engine.db.models import Agent, ApiToken, Store
from engine.errors import InputError, PermissionDenied
from engine.services import audit
from engine.services.agents import principal_for
from engine.workflow.permissions import Action, Principal, Role, require

__all__ = [
    "TOKEN_PREFIX",
    "TokenView",
    "Unauthenticated",
    "authenticate",
    "create_token",
    "hash_token",
    "list_tokens",
    "revoke_token",
]

TOKEN_PREFIX = "rdk_"
_API_ROLES = (Role.AGENT, Role.LEAD)


class Unauthenticated(PermissionDenied):
    """No token, or one that is unknown or revoked (HTTP 401)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _require_admin(actor: Principal | None) -> int | None:
    if actor is None:
        return None
    require(actor, Action.MANAGE_USERS)
    return actor.agent_id


def create_token(
    session: Session, actor: Principal | None, name: str, role: str, store_names: Sequence[str]
) -> tuple[ApiToken, str]:
    """The new token and its plaintext, shown once."""
    actor_id = _require_admin(actor)
    name = name.strip()
    if not name or len(name) > 60 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InputError("Name the token with letters, digits, '-', '_' or '.', e.g. `erp` (at most 60).")
    if role not in _API_ROLES:
        raise InputError(f"An API token's role is agent or lead, not {role!r}.")
    if not store_names:
        raise InputError("Give the token at least one store (--store NAME): tokens are scoped to stores.")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise InputError(f"A token named {name!r} exists already. Revoke it or pick another name.")
    stores = []
    for store_name in store_names:
        store = session.scalar(select(Store).where(Store.name == store_name))
        if store is None:
            raise InputError(f"There is no store named {store_name!r}. List the stores with `replydesk store-list`.")
        stores.append(store)
    agent = Agent(
        username=f"api:{name}",
        display_name=f"API token {name}",
        password_hash="",  # cannot sign in to the app
        role=role,
        languages=[],
        intent_groups=[],
        capacity=0,
        available=False,  # never routed to
    )
    agent.stores = stores
    session.add(agent)
    session.flush()
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name, token_hash=hash_token(plaintext), agent_id=agent.id, created_by_id=actor_id)
    session.add(token)
    session.flush()
    audit.record(session, "api_token.add", "api_token", token.id, actor_id=actor_id, after={"name": name, "role": role})
    return token, plaintext


def revoke_token(session: Session, actor: Principal | None, name: str) -> ApiToken:
    actor_id = _require_admin(actor)
    token = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if token is None:
        raise InputError(f"There is no API token named {name!r}. List them with `replydesk token-list`.")
    token.revoked_at = token.revoked_at or utcnow()
    agent = session.get(Agent, token.agent_id)
    if agent is not None:
        agent.active = False
    audit.record(session, "api_token.revoke", "api_token", token.id, actor_id=actor_id)
    return token


def authenticate(session: Session, presented: str, *, now: datetime | None = None) -> Principal:
    """The principal a bearer token acts as; PermissionDenied for an unknown or revoked token."""
    if not presented.startswith(TOKEN_PREFIX) or len(presented) > 200:
        raise Unauthenticated("Send `Authorization: Bearer rdk_...` with a token from `replydesk token-add`.")
    found = session.execute(
        select(ApiToken, Agent)
        .join(Agent, Agent.id == ApiToken.agent_id)
        .where(ApiToken.token_hash == hash_token(presented))
    ).first()
    if found is None or found[0].revoked_at is not None or not found[1].active:
        raise Unauthenticated("This API token is unknown or revoked. Ask an admin for a new one.")
    token, agent = found
    token.last_used_at = now or utcnow()
    return principal_for(agent)


@dataclass(frozen=True)
class TokenView:
    name: str
    role: str
    stores: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


def list_tokens(session: Session) -> list[TokenView]:
    rows = session.execute(select(ApiToken, Agent).join(Agent, Agent.id == ApiToken.agent_id).order_by(ApiToken.id))
    return [
        TokenView(
            t.name, a.role, sorted(s.name for s in a.stores), t.created_at, t.last_used_at, t.revoked_at is not None
        )
        for t, a in rows
    ]

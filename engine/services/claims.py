"""Claims in the database, so two agents never act on one conversation at once.

Checking a claim and taking it must be one step. On PostgreSQL the conversation row is locked with
`SELECT ... FOR UPDATE` until the transaction ends, so a second agent racing for the same conversation
waits, then sees the first one's claim. On SQLite every transaction takes the write lock up front
(`BEGIN IMMEDIATE`, see `engine.db.session`), which serialises them the same way.

What a claim allows is decided by the pure rules in `engine.workflow.claims`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.base import utcnow
from engine.db.models import Agent, Conversation
from engine.errors import ConflictError, InputError
from engine.services import audit
from engine.workflow.claims import DEFAULT_CLAIM_TTL, Claim, can_claim, is_active, new_claim, require_claim
from engine.workflow.permissions import Action, Principal, is_allowed, require


@dataclass(frozen=True)
class ClaimState:
    """Who is handling a conversation, as the conversation page shows it."""

    mine: bool  # the viewer holds the active claim
    holder: str | None  # display name of the active claim's holder; None when nobody holds it
    expires_at: datetime | None
    until: str  # "14:05 UTC", or with the date when it is not today; "" when nobody holds it

    @property
    def taken_by_other(self) -> bool:
        return self.holder is not None and not self.mine


def current_claim(conversation: Conversation) -> Claim | None:
    """The claim stored on the conversation, active or lapsed; None when nobody ever claimed it or it was
    released. Use `engine.workflow.claims.is_active` to tell whether it still holds."""
    if conversation.claimed_by_id is None or conversation.claim_expires_at is None:
        return None
    return Claim(agent_id=conversation.claimed_by_id, expires_at=conversation.claim_expires_at)


def holder_name(session: Session, held: Claim | None) -> str | None:
    """The display name of the claim's holder, for messages like "being handled by Mia"."""
    if held is None:
        return None
    agent = session.get(Agent, held.agent_id)
    return agent.display_name if agent is not None else None


def lock_conversation(session: Session, conversation_id: int) -> Conversation:
    """The conversation, re-read with its row locked until the transaction ends (a no-op lock on SQLite,
    whose transactions already hold the write lock). Values already in the session are refreshed."""
    conversation = session.scalar(
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if conversation is None:
        raise InputError(f"Conversation {conversation_id} does not exist. Go back to the queue and refresh.")
    return conversation


def claim(
    session: Session,
    principal: Principal,
    conversation_id: int,
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_CLAIM_TTL,
) -> Claim:
    """Claim the conversation for the principal (or renew their claim) for `ttl` from `now`.

    Raises ConflictError naming the colleague and the expiry when someone else holds it.
    """
    conversation = lock_conversation(session, conversation_id)
    require(principal, Action.ACT_ON_CONVERSATION, store_id=conversation.store_id)
    return _take(session, principal, conversation, now=now, ttl=ttl)


def claim_for_action(
    session: Session,
    principal: Principal,
    conversation: Conversation,
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_CLAIM_TTL,
) -> Claim:
    """For an action on a conversation already loaded and permission-checked: refuse when a colleague holds
    it, otherwise take or renew the actor's claim."""
    locked = lock_conversation(session, conversation.id)
    return _take(session, principal, locked, now=now, ttl=ttl)


def _take(
    session: Session, principal: Principal, conversation: Conversation, *, now: datetime, ttl: timedelta
) -> Claim:
    held = current_claim(conversation)
    require_claim(held, principal.agent_id, now, holder_name=holder_name(session, held))
    fresh = new_claim(principal.agent_id, now, ttl)
    conversation.claimed_by_id, conversation.claim_expires_at = fresh.agent_id, fresh.expires_at
    return fresh


def release(session: Session, principal: Principal, conversation_id: int, *, now: datetime | None = None) -> None:
    """Give the conversation back. A lapsed claim or one's own is simply cleared; a lead or admin may also
    release a colleague's active claim (it is audited); an agent cannot."""
    conversation = lock_conversation(session, conversation_id)
    require(principal, Action.VIEW_QUEUE, store_id=conversation.store_id)
    held = current_claim(conversation)
    if held is None:
        return
    at = now if now is not None else utcnow()
    if held.agent_id != principal.agent_id and is_active(held, at):
        if not is_allowed(principal, Action.MANAGE_ROUTING, store_id=conversation.store_id):
            _, reason = can_claim(held, principal.agent_id, at, holder_name=holder_name(session, held))
            raise ConflictError(f"{reason} Only its holder, a lead or an admin can release it.")
        audit.record(
            session,
            "conversation.release",
            "conversation",
            conversation.id,
            actor_id=principal.agent_id,
            before={"claimed_by_id": held.agent_id, "claim_expires_at": held.expires_at.isoformat()},
            after={"claimed_by_id": None},
        )
    conversation.claimed_by_id = conversation.claim_expires_at = None


def release_own(conversation: Conversation, agent_id: int) -> None:
    """Clear the claim if `agent_id` holds it: done with the conversation (replied, no response needed,
    closed), so a colleague may pick it up at once."""
    if conversation.claimed_by_id == agent_id:
        conversation.claimed_by_id = conversation.claim_expires_at = None


def claim_on_open(
    session: Session,
    principal: Principal,
    conversation_id: int,
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_CLAIM_TTL,
) -> ClaimState:
    """For the conversation page: claim (or renew) it when it is free or already ours; when a colleague holds
    it, say who and until when instead of raising."""
    with contextlib.suppress(ConflictError):
        claim(session, principal, conversation_id, now=now, ttl=ttl)
    return claim_state(session, principal, conversation_id, now=now)


def claim_state(session: Session, principal: Principal, conversation_id: int, *, now: datetime) -> ClaimState:
    """Who holds the conversation now, without claiming it."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise InputError(f"Conversation {conversation_id} does not exist. Go back to the queue and refresh.")
    require(principal, Action.VIEW_QUEUE, store_id=conversation.store_id)
    held = current_claim(conversation)
    if held is None or not is_active(held, now):
        return ClaimState(mine=False, holder=None, expires_at=None, until="")
    return ClaimState(
        mine=held.agent_id == principal.agent_id,
        holder=holder_name(session, held) or f"agent #{held.agent_id}",
        expires_at=held.expires_at,
        until=format_until(held.expires_at, now),
    )


def format_until(expires_at: datetime, now: datetime) -> str:
    """The expiry as the refusal message words it: the time alone when it is today (UTC)."""
    expires, today = expires_at.astimezone(UTC), now.astimezone(UTC)
    return f"{expires:%H:%M} UTC" if expires.date() == today.date() else f"{expires:%Y-%m-%d %H:%M} UTC"

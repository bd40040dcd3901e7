"""Short claims on a conversation, so two agents never act on it at once.

An agent claims a conversation when opening it; the claim expires by itself (a closed browser tab must
not lock a conversation for good) and is renewed while the agent keeps working. The database stores
`Claim`; these functions decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.errors import ConflictError, InputError
from engine.workflow.calendar import require_aware

DEFAULT_CLAIM_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class Claim:
    agent_id: int
    expires_at: datetime  # UTC-aware


def is_active(claim: Claim | None, now: datetime) -> bool:
    """Whether the claim still holds at `now` (it lapses at `expires_at` exactly)."""
    return claim is not None and require_aware(now, "now") < require_aware(claim.expires_at, "expires_at")


def can_claim(
    current: Claim | None, agent_id: int, now: datetime, *, holder_name: str | None = None
) -> tuple[bool, str]:
    """(allowed, reason). Free, expired and one's own claims may be taken; `holder_name` makes the
    refusal name the colleague."""
    if current is None:
        return True, "Nobody is handling this conversation."
    if not is_active(current, now):
        return True, "The previous claim has expired."
    until = _until(current.expires_at, now)
    if current.agent_id == agent_id:
        return True, f"You are already handling this conversation (claimed until {until})."
    holder = holder_name or f"agent #{current.agent_id}"
    return False, f"Conversation is being handled by {holder} until {until} — pick another one."


def require_claim(current: Claim | None, agent_id: int, now: datetime, *, holder_name: str | None = None) -> None:
    """Raise ConflictError when someone else holds the conversation."""
    allowed, reason = can_claim(current, agent_id, now, holder_name=holder_name)
    if not allowed:
        raise ConflictError(reason)


def new_claim(agent_id: int, now: datetime, ttl: timedelta = DEFAULT_CLAIM_TTL) -> Claim:
    """A claim for `agent_id` lasting `ttl` from `now`; also how a claim is renewed."""
    if ttl <= timedelta(0):
        raise InputError(f"A claim must last a positive time, got {ttl}.")
    return Claim(agent_id=agent_id, expires_at=require_aware(now, "now") + ttl)


def _until(expires_at: datetime, now: datetime) -> str:
    expires = require_aware(expires_at, "expires_at")
    if expires.date() == require_aware(now, "now").date():
        return f"{expires:%H:%M} UTC"
    return f"{expires:%Y-%m-%d %H:%M} UTC"

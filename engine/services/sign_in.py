"""Local sign-in throttling: back-off and lock-out per username and back-off per client address, every attempt
audited.

The counters live in `sign_in_throttle`, keyed by the folded username whether or not such an account exists, so
an unknown username is throttled, locked and answered exactly like a real one (nothing tells them apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.db.models import Agent, SignInThrottle
from engine.errors import InputError, PermissionDenied
from engine.services import audit
from engine.settings import Settings
from engine.workflow.permissions import Action, Principal, require

MAX_BACKOFF_SECONDS = 300.0


class SignInLocked(PermissionDenied):
    code = "locked"


class SignInThrottled(PermissionDenied):
    code = "throttled"

    def __init__(self, message: str, *, wait_seconds: int) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds


@dataclass(frozen=True)
class SignInLimits:
    max_failures: int = 10
    backoff_after: int = 3
    backoff_seconds: float = 1.0
    client_backoff_after: int = 20

    @classmethod
    def of(cls, settings: Settings) -> SignInLimits:
        return cls(
            settings.login_max_failures,
            settings.login_backoff_after,
            settings.login_backoff_seconds,
            settings.client_backoff_after,
        )


def user_key(username_key: str) -> str:
    return f"user:{username_key}"[:400]


def client_key(client: str) -> str:
    return f"client:{client}"[:400]


def backoff_wait(failures: int, after: int, base_seconds: float) -> float:
    """Seconds to wait after `failures` failures in a row: none up to `after`, then base, 2*base, 4*base ..."""
    if base_seconds <= 0 or failures < after:
        return 0.0
    return min(MAX_BACKOFF_SECONDS, base_seconds * 2 ** min(failures - after, 20))


def _remaining(row: SignInThrottle | None, after: int, base: float, now: datetime) -> int:
    if row is None:
        return 0
    wait = backoff_wait(row.failures, after, base)
    left = (row.last_failure_at + timedelta(seconds=wait) - now).total_seconds()
    return max(0, int(left + 0.999))


def check_allowed(session: Session, username_key: str, client: str, limits: SignInLimits, now: datetime) -> None:
    """Raise SignInLocked or SignInThrottled (after auditing the refusal) when this attempt may not be checked.
    The caller commits the audit event before re-raising."""
    user_row = session.get(SignInThrottle, user_key(username_key))
    if user_row is not None and user_row.locked:
        _audit(session, "agent.login_locked", username_key, client)
        raise SignInLocked(
            f"This account is locked after {limits.max_failures} wrong passwords in a row. "
            "Ask an admin to unlock it (Settings > Users, or `replydesk user-unlock`)."
        )
    waits = [_remaining(user_row, limits.backoff_after, limits.backoff_seconds, now)]
    if client:
        client_row = session.get(SignInThrottle, client_key(client))
        waits.append(_remaining(client_row, limits.client_backoff_after, limits.backoff_seconds, now))
    wait = max(waits)
    if wait > 0:
        _audit(session, "agent.login_throttled", username_key, client)
        raise SignInThrottled(f"Too many wrong passwords. Wait {wait} seconds, then try again.", wait_seconds=wait)


def record_failure(session: Session, username_key: str, client: str, limits: SignInLimits, now: datetime) -> bool:
    """Count a wrong password (for the username and the client) and audit it. True when the account is now
    locked."""
    row = _row(session, user_key(username_key), now)
    row.failures += 1
    row.last_failure_at = now
    row.locked = row.failures >= limits.max_failures
    if client:
        client_row = _row(session, client_key(client), now)
        client_row.failures += 1
        client_row.last_failure_at = now
    _audit(session, "agent.login_failed", username_key, client, failures=row.failures, locked=row.locked)
    session.flush()
    return row.locked


def record_success(session: Session, agent: Agent, client: str) -> None:
    """A right password: the username's count starts again (the client's too) and the sign-in is audited."""
    keys = [user_key(agent.username_key)] + ([client_key(client)] if client else [])
    session.execute(delete(SignInThrottle).where(SignInThrottle.key.in_(keys)))
    audit.record(
        session,
        "agent.login",
        "agent",
        agent.id,
        actor_id=agent.id,
        after={"method": "password", "client": client or None},
    )


def is_locked(session: Session, username_key: str) -> bool:
    return bool(session.scalar(select(SignInThrottle.locked).where(SignInThrottle.key == user_key(username_key))))


def locked_usernames(session: Session) -> set[str]:
    """The folded usernames locked out now (the admin's user list marks them)."""
    keys = session.scalars(select(SignInThrottle.key).where(SignInThrottle.locked.is_(True))).all()
    return {key.removeprefix("user:") for key in keys if key.startswith("user:")}


def unlock(session: Session, principal: Principal, agent_id: int) -> None:
    """An admin lets a locked-out account try again (audited)."""
    require(principal, Action.MANAGE_USERS)
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise InputError(f"Account {agent_id} does not exist (any more); reload the page.")
    session.execute(delete(SignInThrottle).where(SignInThrottle.key == user_key(agent.username_key)))
    # agent_id 0 is the command line, which is no account.
    audit.record(session, "agent.unlock", "agent", agent.id, actor_id=principal.agent_id or None)


def _row(session: Session, key: str, now: datetime) -> SignInThrottle:
    row = session.get(SignInThrottle, key, with_for_update=True)
    if row is None:
        row = SignInThrottle(key=key, failures=0, last_failure_at=now, locked=False)
        session.add(row)
    return row


def _audit(session: Session, action: str, username_key: str, client: str, **extra: object) -> None:
    agent_id = session.scalar(select(Agent.id).where(Agent.username_key == username_key).limit(1))
    after: dict[str, object] = {"method": "password", "username": username_key[:80], "client": client or None}
    after.update(extra)
    audit.record(session, action, "agent", agent_id, after=after)

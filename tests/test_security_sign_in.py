"""Local sign-in: back-off, lock-out and admin unlock, per-client throttling, every attempt audited, unknown
usernames indistinguishable, sessions ended by resets and role changes, demo accounts flagged (both databases)."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.cli_admin import read_password
from engine.db import Database
from engine.db.base import utcnow
from engine.db.models import Agent, AuditEvent
from engine.errors import InputError, PermissionDenied
from engine.services.accounts import log_in, signed_in
from engine.services.agents import (
    AgentChanges,
    NewPassword,
    create_agent,
    demo_accounts_active,
    principal_for,
    update_agent,
)
from engine.services.sign_in import SignInLimits, SignInLocked, SignInThrottled, backoff_wait, unlock
from engine.workflow.permissions import Role
from tests.conftest import BACKENDS

PASSWORD = "correct horse battery"
NO_BACKOFF = SignInLimits(max_failures=10, backoff_after=3, backoff_seconds=0)


@pytest.fixture
def team(fresh_database: Database) -> dict[str, int]:
    hashed = NewPassword.of(PASSWORD)
    with fresh_database.transaction() as session:
        admin = create_agent(session, "root", password=hashed, role=Role.ADMIN)
        mia = create_agent(session, "mia", password=hashed, role=Role.AGENT)
        return {"admin": admin.id, "mia": mia.id}


def _actions(db: Database) -> list[tuple[str, str | None]]:
    with db.read() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("agent.log%")).order_by(AuditEvent.id)
        ).all()
        return [(e.action, (e.after or {}).get("username")) for e in events]


@pytest.mark.parametrize(
    ("failures", "after", "base", "wait"),
    [(0, 3, 1.0, 0), (2, 3, 1.0, 0), (3, 3, 1.0, 1), (4, 3, 1.0, 2), (6, 3, 1.0, 8), (40, 3, 1.0, 300), (9, 3, 0, 0)],
)
def test_backoff_doubles_after_the_threshold_and_is_capped(failures: int, after: int, base: float, wait: float) -> None:
    assert backoff_wait(failures, after, base) == wait


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_ten_wrong_passwords_lock_the_account_until_an_admin_unlocks_it(
    fresh_database: Database, team: dict[str, int]
) -> None:
    for attempt in range(1, 10):
        with pytest.raises(PermissionDenied) as wrong:
            log_in(fresh_database, "mia", "wrong password", limits=NO_BACKOFF)
        assert not isinstance(wrong.value, SignInLocked), attempt
    with pytest.raises(SignInLocked, match="now locked"):
        log_in(fresh_database, "mia", "wrong password", limits=NO_BACKOFF)
    with pytest.raises(SignInLocked, match="Ask an admin to unlock"):
        log_in(fresh_database, "MIA", PASSWORD, limits=NO_BACKOFF)  # the right password, any case: still locked

    with fresh_database.transaction() as session:
        mia = session.get_one(Agent, team["mia"])
        with pytest.raises(PermissionDenied):
            unlock(session, principal_for(mia), team["mia"])  # only an admin may
        unlock(session, principal_for(session.get_one(Agent, team["admin"])), team["mia"])
    assert log_in(fresh_database, "mia", PASSWORD, limits=NO_BACKOFF).principal.agent_id == team["mia"]

    actions = [action for action, _ in _actions(fresh_database)]
    assert actions == ["agent.login_failed"] * 10 + ["agent.login_locked", "agent.login"]
    with fresh_database.read() as session:
        assert session.scalar(select(AuditEvent.actor_id).where(AuditEvent.action == "agent.unlock")) == team["admin"]


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_back_off_refuses_early_retries_and_a_success_resets_the_count(
    fresh_database: Database, team: dict[str, int]
) -> None:
    limits = SignInLimits(max_failures=10, backoff_after=2, backoff_seconds=60)
    start = utcnow()
    for _ in range(2):
        with pytest.raises(PermissionDenied):
            log_in(fresh_database, "mia", "nope", limits=limits, now=start)
    with pytest.raises(SignInThrottled, match="Wait 59 seconds") as throttled:
        log_in(fresh_database, "mia", PASSWORD, limits=limits, now=start + timedelta(seconds=1))
    assert throttled.value.wait_seconds == 59  # 60 from the last failure, 1 second ago
    # Once the wait is over the right password gets in, and the count starts again.
    log_in(fresh_database, "mia", PASSWORD, limits=limits, now=start + timedelta(seconds=61))
    with pytest.raises(PermissionDenied) as again:
        log_in(fresh_database, "mia", "nope", limits=limits, now=start + timedelta(seconds=62))
    assert not isinstance(again.value, SignInThrottled)
    assert [a for a, _ in _actions(fresh_database)] == [
        "agent.login_failed",
        "agent.login_failed",
        "agent.login_throttled",
        "agent.login",
        "agent.login_failed",
    ]


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_one_client_guessing_many_usernames_is_slowed_down(fresh_database: Database, team: dict[str, int]) -> None:
    limits = SignInLimits(max_failures=10, backoff_after=5, backoff_seconds=30, client_backoff_after=3)
    now = utcnow()
    for name in ("a1", "a2", "a3"):
        with pytest.raises(PermissionDenied):
            log_in(fresh_database, name, "guess", client="203.0.113.9", limits=limits, now=now)
    with pytest.raises(SignInThrottled):
        log_in(fresh_database, "mia", PASSWORD, client="203.0.113.9", limits=limits, now=now)
    # Another address is not slowed down by the first one's guesses.
    assert log_in(fresh_database, "mia", PASSWORD, client="198.51.100.7", limits=limits, now=now).username == "mia"


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_an_unknown_username_is_answered_like_a_known_one(fresh_database: Database, team: dict[str, int]) -> None:
    messages = {}
    for name in ("mia", "nobody-here"):
        for _ in range(9):
            with pytest.raises(PermissionDenied):
                log_in(fresh_database, name, "wrong", limits=NO_BACKOFF)
        with pytest.raises(SignInLocked) as locked:
            log_in(fresh_database, name, "wrong", limits=NO_BACKOFF)
        messages[name] = str(locked.value)
    assert messages["mia"] == messages["nobody-here"]

    def timed(name: str) -> float:
        began = time.perf_counter()
        with pytest.raises(PermissionDenied):
            log_in(fresh_database, name, "wrong", limits=NO_BACKOFF)
        return time.perf_counter() - began

    with fresh_database.transaction() as session:  # unlock both (the unknown one through its key)
        admin = principal_for(session.get_one(Agent, team["admin"]))
        unlock(session, admin, team["mia"])
    for name in ("other-a", "other-b"):
        timed(name)  # warm-up
    known = sorted(timed("root") for _ in range(5))[2]  # the median
    unknown = sorted(timed(f"ghost-{i}") for i in range(5))[2]
    # Both run one argon2 verification: within a factor, never the several-fold gap of skipping it.
    assert 0.5 < unknown / known < 2.0


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_resets_role_changes_and_deactivation_end_every_session(fresh_database: Database, team: dict[str, int]) -> None:
    changes = [
        AgentChanges(password=NewPassword.of("another long password")),
        AgentChanges(role=Role.LEAD),
        AgentChanges(display_name="Mia M."),  # not a reason to sign out
    ]
    for change, ends in zip(changes, (True, True, False), strict=True):
        with fresh_database.read() as session:
            generation = session.get_one(Agent, team["mia"]).session_generation
        with fresh_database.transaction() as session:
            update_agent(session, principal_for(session.get_one(Agent, team["admin"])), team["mia"], change)
        with fresh_database.read() as session:
            assert (signed_in(session, team["mia"], generation) is None) is ends, change
    with fresh_database.transaction() as session:
        admin = principal_for(session.get_one(Agent, team["admin"]))
        update_agent(session, admin, team["mia"], AgentChanges(active=False))
        assert signed_in(session, team["mia"]) is None


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_demo_accounts_are_flagged_until_their_password_changes(fresh_database: Database) -> None:
    with fresh_database.transaction() as session:
        admin = create_agent(session, "admin", password=NewPassword.of("demo-admin"), role=Role.ADMIN, demo=True)
        assert demo_accounts_active(session)
        update_agent(session, principal_for(admin), admin.id, AgentChanges(password=NewPassword.of("a new secret!")))
        assert not demo_accounts_active(session)


def test_user_add_reads_one_line_of_stdin_and_refuses_none() -> None:
    assert read_password(io.StringIO("s3cret password\nignored\n")) == "s3cret password"
    with pytest.raises(InputError, match="No password on standard input"):
        read_password(io.StringIO(""))

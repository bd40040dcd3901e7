"""Claims: one agent at a time per conversation, expiring by themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import ConflictError, InputError
from engine.workflow.claims import DEFAULT_CLAIM_TTL, Claim, can_claim, is_active, new_claim, require_claim

NOW = datetime(2026, 3, 28, 13, 55, tzinfo=UTC)
MIA, BEN = 1, 2


@pytest.mark.parametrize(
    ("current", "agent_id", "holder_name", "allowed", "reason"),
    [
        pytest.param(None, BEN, None, True, "Nobody is handling", id="free"),
        pytest.param(Claim(MIA, NOW + timedelta(minutes=10)), BEN, "Mia", False,
                     "Conversation is being handled by Mia until 14:05 UTC — pick another one.", id="held"),
        pytest.param(Claim(MIA, NOW + timedelta(minutes=10)), BEN, None, False,
                     "Conversation is being handled by agent #1 until 14:05 UTC — pick another one.",
                     id="held-without-name"),
        pytest.param(Claim(MIA, NOW + timedelta(seconds=1)), BEN, "Mia", False, "until 13:55 UTC",
                     id="held-for-one-more-second"),
        pytest.param(Claim(MIA, NOW), BEN, "Mia", True, "expired", id="expires-at-the-instant"),
        pytest.param(Claim(MIA, NOW - timedelta(hours=1)), BEN, "Mia", True, "expired", id="long-expired"),
        pytest.param(Claim(MIA, NOW + timedelta(minutes=10)), MIA, "Mia", True, "already handling",
                     id="own-claim-renewable"),
        pytest.param(Claim(MIA, NOW + timedelta(hours=12)), BEN, "Mia", False, "until 2026-03-29 01:55 UTC",
                     id="other-day-shows-date"),
    ],
)  # fmt: skip
def test_can_claim(current: Claim | None, agent_id: int, holder_name: str | None, allowed: bool, reason: str) -> None:
    ok, message = can_claim(current, agent_id, NOW, holder_name=holder_name)
    assert ok is allowed
    assert reason in message


def test_can_claim_reads_other_time_zones_as_instants() -> None:
    from zoneinfo import ZoneInfo

    claim = Claim(MIA, datetime(2026, 3, 28, 15, 5, tzinfo=ZoneInfo("Europe/Berlin")))  # 14:05 UTC
    ok, message = can_claim(claim, BEN, NOW, holder_name="Mia")
    assert not ok
    assert "until 14:05 UTC" in message


def test_new_claim_and_renewal() -> None:
    claim = new_claim(MIA, NOW)
    assert claim == Claim(MIA, NOW + DEFAULT_CLAIM_TTL)
    assert timedelta(minutes=10) == DEFAULT_CLAIM_TTL
    later = NOW + timedelta(minutes=8)
    assert can_claim(claim, MIA, later)[0]
    renewed = new_claim(MIA, later, ttl=timedelta(minutes=5))
    assert renewed.expires_at == later + timedelta(minutes=5)


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(minutes=-1)])
def test_new_claim_needs_positive_ttl(ttl: timedelta) -> None:
    with pytest.raises(InputError, match="positive"):
        new_claim(MIA, NOW, ttl)


def test_new_claim_refuses_naive_time() -> None:
    with pytest.raises(InputError, match="no time zone"):
        new_claim(MIA, datetime(2026, 3, 28, 13, 55))


@pytest.mark.parametrize(
    ("claim", "expected"),
    [(None, False), (Claim(MIA, NOW + timedelta(seconds=1)), True), (Claim(MIA, NOW), False)],
)
def test_is_active(claim: Claim | None, expected: bool) -> None:
    assert is_active(claim, NOW) is expected


def test_require_claim_raises_conflict_for_someone_else() -> None:
    held = Claim(MIA, NOW + timedelta(minutes=10))
    require_claim(held, MIA, NOW)  # the holder may go on
    with pytest.raises(ConflictError, match="handled by Mia until 14:05 UTC"):
        require_claim(held, BEN, NOW, holder_name="Mia")

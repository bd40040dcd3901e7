"""Token buckets and retry delays, on an injected clock: no real time passes."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from engine.amazon.ratelimit import RateLimiter, UsagePlan, backoff_delay, parse_retry_after


class FakeClock:
    """Monotonic clock whose sleep advances time (or only records, with `advance=False`)."""

    def __init__(self, *, advance: bool = True) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._advance = advance
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if self._advance:
                self.now += seconds


def limiter(clock: FakeClock, plans: dict[str, UsagePlan] | None = None) -> RateLimiter:
    return RateLimiter(clock=clock, sleep=clock.sleep, plans=plans)


def test_burst_of_five_then_one_per_second() -> None:
    clock = FakeClock()
    bucket = limiter(clock)
    waits = [bucket.acquire("getAttributes") for _ in range(8)]
    assert waits == [0.0] * 5 + [1.0, 1.0, 1.0]
    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert clock.now == pytest.approx(3.0)


def test_idle_time_refills_but_never_beyond_the_burst() -> None:
    clock = FakeClock()
    bucket = limiter(clock)
    for _ in range(5):
        bucket.acquire("op")
    clock.now += 100.0
    waits = [bucket.acquire("op") for _ in range(6)]
    assert waits == [0.0] * 5 + [1.0]


def test_operations_have_separate_buckets() -> None:
    clock = FakeClock()
    bucket = limiter(clock)
    for _ in range(5):
        bucket.acquire("getOrder")
    assert bucket.acquire("getAttributes") == 0.0
    assert bucket.acquire("getOrder") == 1.0


def test_operation_plan_overrides_the_default() -> None:
    clock = FakeClock()
    bucket = limiter(clock, plans={"getOrder": UsagePlan(rate=0.5, burst=2)})
    assert [bucket.acquire("getOrder") for _ in range(3)] == [0.0, 0.0, 2.0]


@pytest.mark.parametrize(("header", "expected_wait"), [("2.0", 0.5), ("0.25", 4.0), ("10", 0.1)])
def test_rate_limit_header_is_adopted(header: str, expected_wait: float) -> None:
    clock = FakeClock()
    bucket = limiter(clock)
    bucket.adopt_header("op", header)
    waits = [bucket.acquire("op") for _ in range(6)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(expected_wait)
    assert bucket.rate_of("op") == float(header)


@pytest.mark.parametrize("header", [None, "", "fast", "0", "-3"])
def test_garbled_rate_limit_header_changes_nothing(header: str | None) -> None:
    bucket = limiter(FakeClock())
    bucket.adopt_header("op", header)
    assert bucket.rate_of("op") == 1.0


def test_concurrent_callers_get_distinct_slots() -> None:
    clock = FakeClock(advance=False)  # time stands still: every extra caller queues one second later
    bucket = limiter(clock)
    threads = [threading.Thread(target=bucket.acquire, args=("op",)) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(clock.sleeps) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_backoff_is_full_jitter_capped_and_seeded() -> None:
    rng = random.Random(42)
    delays = [backoff_delay(attempt, base=1.0, cap=8.0, rng=rng) for attempt in range(6)]
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert all(0.0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    again = random.Random(42)
    assert delays == [backoff_delay(a, base=1.0, cap=8.0, rng=again) for a in range(6)]


NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        (" 0.5 ", 0.5),
        ("0", 0.0),
        (format_datetime(NOW + timedelta(seconds=10), usegmt=True), 10.0),
        (format_datetime(NOW - timedelta(seconds=10), usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_seconds_or_http_date(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected

"""Per-operation token buckets for SP-API usage plans, plus the retry-delay arithmetic.

Amazon meters each operation separately (default 1 request/s, burst 5; Orders v0 reads 0.5/s, burst 30)
and may announce the seller's real rate in the `x-amzn-RateLimit-Limit` response header. The clock and
the sleep are injected so tests run instantly and deterministically.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

Clock = Callable[[], float]
Sleep = Callable[[float], None]

DEFAULT_RATE = 1.0  # requests per second
DEFAULT_BURST = 5


@dataclass(frozen=True)
class UsagePlan:
    rate: float  # requests per second
    burst: int


DEFAULT_PLAN = UsagePlan(DEFAULT_RATE, DEFAULT_BURST)


@dataclass
class _Bucket:
    rate: float
    burst: int
    tokens: float  # may go negative: a negative balance is a queue of reserved slots
    updated: float

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)


class RateLimiter:
    """Thread-safe token buckets keyed by operation name (e.g. "getOrder")."""

    def __init__(
        self,
        *,
        default: UsagePlan = DEFAULT_PLAN,
        plans: Mapping[str, UsagePlan] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._default = default
        self._plans = dict(plans or {})
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, operation: str, now: float) -> _Bucket:
        bucket = self._buckets.get(operation)
        if bucket is None:
            plan = self._plans.get(operation, self._default)
            bucket = _Bucket(rate=plan.rate, burst=plan.burst, tokens=float(plan.burst), updated=now)
            self._buckets[operation] = bucket
        return bucket

    def acquire(self, operation: str) -> float:
        """Take one token for `operation`, sleeping until it is available; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            bucket = self._bucket(operation, now)
            bucket.refill(now)
            bucket.tokens -= 1.0
            # Reserve the slot under the lock, sleep outside it, so other operations are not held up.
            wait = -bucket.tokens / bucket.rate if bucket.tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def adopt_rate(self, operation: str, rate: float) -> None:
        """Use the rate Amazon announced for this seller and operation (burst stays as planned)."""
        if rate <= 0:
            return
        with self._lock:
            now = self._clock()
            bucket = self._bucket(operation, now)
            bucket.refill(now)  # settle the time elapsed at the old rate first
            bucket.rate = rate

    def adopt_header(self, operation: str, header_value: str | None) -> None:
        """Apply an `x-amzn-RateLimit-Limit` header value; a missing or garbled value changes nothing."""
        if not header_value:
            return
        try:
            rate = float(header_value.strip())
        except ValueError:
            return
        self.adopt_rate(operation, rate)

    def rate_of(self, operation: str) -> float:
        with self._lock:
            return self._bucket(operation, self._clock()).rate


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)], attempt from 0."""
    return rng.uniform(0.0, min(cap, base * (2**attempt)))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date); None if absent or garbled."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())

"""Response clocks: Amazon's 24 h deadline, the store's optional business-hours target, and the
late-response and response-time statistics Seller Central reports.

How the Amazon clock is read from a thread's events (Amazon measures every buyer message on its own):
- A buyer message is *answered* by the first reply after it; "no response needed" (NRN) removes every
  buyer message before it from the count.
- The clock that matters is the one of the **oldest** buyer message after the last reply or NRN: it
  runs out first. A later buyer message starts its own clock but never extends the one already running.
- Once answered, the next buyer message starts a fresh 24 h clock.
- Weekends and holidays count: the deadline is plain elapsed time, `received + 24 h`.
- Events at the same instant: the buyer message is taken to come first, so a reply stamped with the
  same second answers it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from engine.errors import InputError
from engine.workflow.calendar import BusinessCalendar, require_aware

AMAZON_RESPONSE_WINDOW = timedelta(hours=24)
AT_RISK_WINDOW = timedelta(hours=4)

EventKind = Literal["buyer_message", "reply", "no_response_needed"]
_EVENT_KINDS: tuple[str, ...] = ("buyer_message", "reply", "no_response_needed")


@dataclass(frozen=True)
class ThreadEvent:
    at: datetime  # UTC-aware
    kind: EventKind

    def __post_init__(self) -> None:
        if self.kind not in _EVENT_KINDS:
            raise InputError(f"Unknown thread event kind {self.kind!r}; use one of {', '.join(_EVENT_KINDS)}.")
        require_aware(self.at, "ThreadEvent.at")


class SlaState(StrEnum):
    OK = "ok"
    AT_RISK = "at_risk"
    OVERDUE = "overdue"
    ANSWERED = "answered"  # nothing is awaiting a response


def _in_order(events: Sequence[ThreadEvent]) -> list[ThreadEvent]:
    # Buyer messages sort before a reply/NRN stamped with the same instant (see module docstring).
    return sorted(events, key=lambda e: (e.at.astimezone(UTC), e.kind != "buyer_message"))


def awaiting_since(events: Sequence[ThreadEvent]) -> datetime | None:
    """When the oldest buyer message still awaiting a response arrived (UTC), or None."""
    oldest: datetime | None = None
    for event in _in_order(events):
        if event.kind == "buyer_message":
            if oldest is None:
                oldest = event.at.astimezone(UTC)
        else:
            oldest = None
    return oldest


def amazon_deadline(events: Sequence[ThreadEvent]) -> datetime | None:
    """Amazon's 24 h deadline (UTC) for the thread, or None when nothing is awaiting a response."""
    since = awaiting_since(events)
    return None if since is None else since + AMAZON_RESPONSE_WINDOW


def internal_deadline(events: Sequence[ThreadEvent], calendar: BusinessCalendar, target: timedelta) -> datetime | None:
    """The store's internal deadline: `target` of business time after the oldest unanswered message."""
    since = awaiting_since(events)
    return None if since is None else calendar.add_business_time(since, target)


def time_left(deadline: datetime, now: datetime) -> timedelta:
    """Time until the deadline; negative when overdue."""
    return require_aware(deadline, "deadline") - require_aware(now, "now")


def sla_state(deadline: datetime | None, now: datetime, *, at_risk: timedelta = AT_RISK_WINDOW) -> SlaState:
    """A reply at the very deadline is still on time (Amazon counts "more than 24 h" as late);
    `at_risk` is how close to the deadline a conversation turns amber."""
    if deadline is None:
        return SlaState.ANSWERED
    left = time_left(deadline, now)
    if left < timedelta(0):
        return SlaState.OVERDUE
    if left <= at_risk:
        return SlaState.AT_RISK
    return SlaState.OK


_UNITS = {
    "en": {"d": "d", "h": "h", "min": "min", "left": "{}", "overdue": "overdue by {}", "sep": " "},
    "zh": {"d": "天", "h": "小时", "min": "分钟", "left": "剩余 {}", "overdue": "已超时 {}", "sep": " "},
}


def format_time_left(delta: timedelta, language: str = "en") -> str:
    """Like "3 h 12 min" / "overdue by 2 h 5 min"; zh "剩余 3 小时 12 分钟" / "已超时 2 小时 5 分钟".

    Rounded pessimistically: time left is rounded down and lateness up, so the display never promises
    more time than there is. Past a day it shows days and hours. Unknown languages fall back to English.
    """
    units = _UNITS.get(language.split("-")[0].lower(), _UNITS["en"])
    overdue = delta < timedelta(0)
    seconds = abs(delta).total_seconds()
    minutes = math.ceil(seconds / 60) if overdue else math.floor(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        parts = [f"{days} {units['d']}", f"{hours} {units['h']}"]
    elif hours:
        parts = [f"{hours} {units['h']}", f"{mins} {units['min']}"]
    else:
        parts = [f"{mins} {units['min']}"]
    amount = units["sep"].join(parts)
    return (units["overdue"] if overdue else units["left"]).format(amount)


def response_pairs(events: Sequence[ThreadEvent]) -> list[tuple[datetime, datetime | None]]:
    """One (received, answered_at) pair per buyer message that needs a response, for the statistics.

    Each buyer message is answered by the first reply after it; messages cleared by NRN are left out,
    as Amazon removes them from the count.
    """
    pairs: list[tuple[datetime, datetime | None]] = []
    waiting: list[datetime] = []
    for event in _in_order(events):
        at = event.at.astimezone(UTC)
        if event.kind == "buyer_message":
            waiting.append(at)
        elif event.kind == "reply":
            pairs.extend((received, at) for received in waiting)
            waiting = []
        else:
            waiting = []
    pairs.extend((received, None) for received in waiting)
    return sorted(pairs, key=lambda pair: pair[0])


def late_response_rate(pairs: Sequence[tuple[datetime, datetime | None]], now: datetime, days: int) -> float | None:
    """Seller Central's late-response rate over the last `days` days, in [0, 1], or None.

    Counts buyer messages received in (now - days, now]: late when answered more than 24 h after
    arrival, or still unanswered more than 24 h after it. Unanswered ones still inside their 24 h are
    left out (they can still be on time); a reply stamped after `now` is not known yet.
    """
    if days <= 0:
        raise InputError(f"The late-response window must be at least one day, got {days}.")
    now_utc = require_aware(now, "now")
    window_start = now_utc - timedelta(days=days)
    counted = late = 0
    # Aware datetimes compare and subtract correctly in any zone: no per-pair conversion (this runs over
    # every buyer message of 90 days on the statistics page), only the check that none is naive.
    for received, answered in pairs:
        if received.tzinfo is None:
            require_aware(received, "received")  # raises
        if answered is not None and answered.tzinfo is None:
            require_aware(answered, "answered")  # raises
        if not window_start < received <= now_utc:
            continue
        if answered is not None and answered <= now_utc:
            counted += 1
            late += answered - received > AMAZON_RESPONSE_WINDOW
        elif now_utc - received > AMAZON_RESPONSE_WINDOW:
            counted += 1
            late += 1
    return None if counted == 0 else late / counted


def first_response_times(pairs: Sequence[tuple[datetime, datetime | None]]) -> list[timedelta]:
    """Response time of every answered buyer message, in the order given."""
    return [
        require_aware(answered, "answered") - require_aware(received, "received")
        for received, answered in pairs
        if answered is not None
    ]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (q in [0, 100]) with linear interpolation between closest ranks
    (the default of numpy and of Excel's PERCENTILE.INC); None for no values."""
    if not 0 <= q <= 100:
        raise InputError(f"A percentile must be between 0 and 100, got {q}.")
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class ResponseTimeSummary:
    count: int
    mean: timedelta
    median: timedelta
    p90: timedelta


def summarize_response_times(durations: Sequence[timedelta]) -> ResponseTimeSummary | None:
    """Mean, median and 90th percentile of response times; None for none."""
    if not durations:
        return None
    seconds = [d.total_seconds() for d in durations]

    def at(q: float) -> timedelta:
        value = percentile(seconds, q)
        assert value is not None  # seconds is not empty
        return timedelta(seconds=value)

    return ResponseTimeSummary(
        count=len(seconds), mean=timedelta(seconds=sum(seconds) / len(seconds)), median=at(50), p90=at(90)
    )

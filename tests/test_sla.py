"""Amazon's 24 h clock, the business-hours calendar and the response statistics, from tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from engine.errors import ConfigError, InputError
from engine.workflow.calendar import BusinessCalendar
from engine.workflow.sla import (
    AMAZON_RESPONSE_WINDOW,
    SlaState,
    ThreadEvent,
    amazon_deadline,
    first_response_times,
    format_time_left,
    internal_deadline,
    late_response_rate,
    percentile,
    response_pairs,
    sla_state,
    summarize_response_times,
    time_left,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
T0 = datetime(2026, 3, 28, 10, 0, tzinfo=UTC)  # a Saturday


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def h(hours: float) -> timedelta:
    return timedelta(hours=hours)


def buyer(at: datetime) -> ThreadEvent:
    return ThreadEvent(at, "buyer_message")


def reply(at: datetime) -> ThreadEvent:
    return ThreadEvent(at, "reply")


def nrn(at: datetime) -> ThreadEvent:
    return ThreadEvent(at, "no_response_needed")


# --- Amazon's 24 h clock ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([], None, id="no-events"),
        pytest.param([buyer(T0)], T0 + h(24), id="saturday-message-due-sunday"),
        pytest.param([buyer(utc(2026, 12, 24, 20, 0))], utc(2026, 12, 25, 20, 0), id="christmas-counts-like-any-day"),
        pytest.param([buyer(T0), reply(T0 + h(1))], None, id="reply-stops-clock"),
        pytest.param([buyer(T0), nrn(T0 + h(1))], None, id="nrn-stops-clock"),
        pytest.param([reply(T0)], None, id="reply-only"),
        pytest.param([buyer(T0), reply(T0 + h(1)), buyer(T0 + h(5))], T0 + h(29), id="new-message-restarts"),
        pytest.param([buyer(T0), nrn(T0 + h(1)), buyer(T0 + h(5))], T0 + h(29), id="message-after-nrn"),
        pytest.param([buyer(T0), buyer(T0 + h(3))], T0 + h(24), id="oldest-unanswered-wins"),
        pytest.param([buyer(T0), buyer(T0 + h(23))], T0 + h(24), id="follow-up-does-not-extend"),
        pytest.param([buyer(T0 + h(3)), reply(T0 + h(1)), buyer(T0)], T0 + h(27), id="unsorted-reply-between"),
        pytest.param([reply(T0 + h(2)), buyer(T0), buyer(T0 + h(1))], None, id="unsorted-all-answered"),
        pytest.param([reply(T0), buyer(T0)], None, id="same-instant-reply-answers"),
        pytest.param(
            [buyer(T0), reply(T0 + h(1)), buyer(T0 + h(2)), nrn(T0 + h(3)), buyer(T0 + h(10)), buyer(T0 + h(11))],
            T0 + h(34),
            id="long-thread",
        ),
        pytest.param(
            [buyer(datetime(2026, 3, 28, 12, 0, tzinfo=ZoneInfo("Europe/Berlin")))],
            utc(2026, 3, 29, 11, 0),
            id="local-input-across-dst-is-24-real-hours",
        ),
    ],
)
def test_amazon_deadline(events: list[ThreadEvent], expected: datetime | None) -> None:
    deadline = amazon_deadline(events)
    assert deadline == expected
    if deadline is not None:
        assert deadline.tzinfo == UTC


def test_thread_event_refuses_naive_datetime() -> None:
    with pytest.raises(InputError, match="no time zone"):
        ThreadEvent(datetime(2026, 3, 28, 10, 0), "buyer_message")


def test_thread_event_refuses_unknown_kind() -> None:
    with pytest.raises(InputError, match="Unknown thread event kind"):
        ThreadEvent(T0, "seller_message")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (h(23), SlaState.OK),
        (h(4) + timedelta(seconds=1), SlaState.OK),
        (h(4), SlaState.AT_RISK),
        (timedelta(minutes=1), SlaState.AT_RISK),
        (timedelta(0), SlaState.AT_RISK),  # a reply at the deadline itself is still on time
        (timedelta(seconds=-1), SlaState.OVERDUE),
        (-h(30), SlaState.OVERDUE),
    ],
)
def test_sla_state(left: timedelta, expected: SlaState) -> None:
    assert sla_state(T0 + left, T0) is expected
    assert time_left(T0 + left, T0) == left


def test_sla_state_without_deadline_is_answered() -> None:
    assert sla_state(None, T0) is SlaState.ANSWERED


def test_sla_state_with_custom_at_risk_window() -> None:
    assert sla_state(T0 + h(6), T0, at_risk=h(8)) is SlaState.AT_RISK
    assert sla_state(T0 + h(6), T0, at_risk=h(1)) is SlaState.OK


@pytest.mark.parametrize(
    ("delta", "language", "expected"),
    [
        (h(3) + timedelta(minutes=12), "en", "3 h 12 min"),
        (h(3) + timedelta(minutes=12, seconds=59), "en", "3 h 12 min"),  # never promise more time
        (h(3), "en", "3 h 0 min"),
        (timedelta(seconds=45), "en", "0 min"),
        (timedelta(0), "en", "0 min"),
        (h(24), "en", "1 d 0 h"),
        (-(h(2) + timedelta(minutes=5)), "en", "overdue by 2 h 5 min"),
        (-(h(2) + timedelta(minutes=4, seconds=1)), "en", "overdue by 2 h 5 min"),  # lateness rounds up
        (timedelta(seconds=-30), "en", "overdue by 1 min"),
        (-(h(27) + timedelta(minutes=20)), "en", "overdue by 1 d 3 h"),
        (h(3) + timedelta(minutes=12), "zh", "剩余 3 小时 12 分钟"),
        (-(h(2) + timedelta(minutes=5)), "zh", "已超时 2 小时 5 分钟"),
        (h(50), "zh-CN", "剩余 2 天 2 小时"),
        (timedelta(minutes=7), "de", "7 min"),  # unknown UI language falls back to English
    ],
)
def test_format_time_left(delta: timedelta, language: str, expected: str) -> None:
    assert format_time_left(delta, language) == expected


# --- business calendar --------------------------------------------------------------------------

BERLIN_OFFICE = BusinessCalendar.from_dict(
    {
        "timezone": "Europe/Berlin",
        "hours": {day: ["09:00", "18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": ["2026-12-24", "2026-12-25"],
    }
)
NEW_YORK_OFFICE = BusinessCalendar(timezone="America/New_York", hours={day: (time(9), time(17)) for day in range(5)})
BERLIN_ALWAYS_OPEN = BusinessCalendar.from_dict(
    {"timezone": "Europe/Berlin", "hours": {day: ["00:00", "24:00"] for day in range(7)}}
)


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def new_york(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("calendar", "start", "duration", "expected"),
    [
        pytest.param(BERLIN_OFFICE, berlin(2026, 3, 4, 10), h(3), berlin(2026, 3, 4, 13), id="same-day"),
        pytest.param(BERLIN_OFFICE, berlin(2026, 3, 2, 7), h(1), berlin(2026, 3, 2, 10), id="before-open"),
        pytest.param(BERLIN_OFFICE, berlin(2026, 3, 2, 19), h(1), berlin(2026, 3, 3, 10), id="after-close"),
        pytest.param(BERLIN_OFFICE, berlin(2026, 3, 2, 9), h(9), berlin(2026, 3, 2, 18), id="ends-at-close"),
        pytest.param(BERLIN_OFFICE, berlin(2026, 3, 2, 19), h(0), berlin(2026, 3, 2, 19), id="zero-stays"),
        pytest.param(BERLIN_OFFICE, berlin(2026, 3, 6, 17), h(2), berlin(2026, 3, 9, 10), id="over-weekend"),
        pytest.param(BERLIN_OFFICE, berlin(2026, 3, 27, 16), h(4), utc(2026, 3, 30, 9), id="berlin-spring-forward"),
        pytest.param(BERLIN_OFFICE, berlin(2026, 10, 23, 16), h(4), utc(2026, 10, 26, 10), id="berlin-fall-back"),
        pytest.param(BERLIN_OFFICE, berlin(2026, 12, 23, 17), h(2), berlin(2026, 12, 28, 10), id="holidays-skipped"),
        pytest.param(
            NEW_YORK_OFFICE, new_york(2026, 3, 6, 15), h(3), utc(2026, 3, 9, 14), id="new-york-spring-forward"
        ),
        pytest.param(NEW_YORK_OFFICE, new_york(2026, 10, 30, 15), h(3), utc(2026, 11, 2, 15), id="new-york-fall-back"),
        pytest.param(
            NEW_YORK_OFFICE, utc(2026, 3, 6, 23, 30), h(1), new_york(2026, 3, 9, 10), id="utc-input-after-close"
        ),
        pytest.param(
            BERLIN_ALWAYS_OPEN,
            berlin(2026, 3, 28, 12),
            h(24),
            berlin(2026, 3, 29, 13),  # the 23-hour Sunday: 24 real hours end an hour "later" on the clock
            id="always-open-short-day",
        ),
        pytest.param(
            BERLIN_ALWAYS_OPEN,
            berlin(2026, 10, 24, 12),
            h(24),
            berlin(2026, 10, 25, 11),
            id="always-open-long-day",
        ),
    ],
)
def test_add_business_time(
    calendar: BusinessCalendar, start: datetime, duration: timedelta, expected: datetime
) -> None:
    result = calendar.add_business_time(start, duration)
    assert result == expected
    assert result.tzinfo == UTC
    assert calendar.business_time_between(start, result) == duration


@pytest.mark.parametrize(
    ("calendar", "start", "end", "expected"),
    [
        pytest.param(BERLIN_OFFICE, berlin(2026, 3, 6, 17), berlin(2026, 3, 9, 10), h(2), id="over-weekend"),
        pytest.param(BERLIN_OFFICE, berlin(2026, 3, 9, 10), berlin(2026, 3, 6, 17), -h(2), id="reversed"),
        pytest.param(BERLIN_OFFICE, berlin(2026, 3, 7, 10), berlin(2026, 3, 8, 20), h(0), id="weekend-only"),
        pytest.param(BERLIN_OFFICE, berlin(2026, 3, 2, 0), berlin(2026, 3, 9, 0), h(45), id="full-week"),
        pytest.param(BERLIN_OFFICE, berlin(2026, 12, 21, 0), berlin(2026, 12, 28, 0), h(27), id="christmas-week"),
        pytest.param(BERLIN_ALWAYS_OPEN, berlin(2026, 3, 29, 0), berlin(2026, 3, 30, 0), h(23), id="dst-day-23h"),
        pytest.param(BERLIN_ALWAYS_OPEN, berlin(2026, 10, 25, 0), berlin(2026, 10, 26, 0), h(25), id="dst-day-25h"),
        pytest.param(
            BusinessCalendar("Europe/Berlin", {6: (time(1), time(4))}),
            berlin(2026, 3, 29, 0),
            berlin(2026, 3, 29, 12),
            h(2),
            id="window-across-the-spring-gap",
        ),
        pytest.param(
            BusinessCalendar("Europe/Berlin", {6: (time(1), time(4))}),
            berlin(2026, 10, 25, 0),
            berlin(2026, 10, 25, 12),
            h(4),
            id="window-across-the-autumn-repeat",
        ),
    ],
)
def test_business_time_between(calendar: BusinessCalendar, start: datetime, end: datetime, expected: timedelta) -> None:
    assert calendar.business_time_between(start, end) == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (berlin(2026, 3, 2, 9), True),
        (berlin(2026, 3, 2, 18), False),
        (berlin(2026, 3, 7, 12), False),
        (berlin(2026, 12, 24, 12), False),
    ],
)
def test_is_open(at: datetime, expected: bool) -> None:
    assert BERLIN_OFFICE.is_open(at) is expected


def test_from_dict_builds_calendar() -> None:
    calendar = BusinessCalendar.from_dict(
        {
            "timezone": "America/New_York",
            "hours": {"Monday": ["08:30", "17:00"], 5: ["10:00", "24:00"], "6": ["12:00", "14:00"]},
        }
    )
    assert calendar.hours == {0: (time(8, 30), time(17)), 5: (time(10), time(0)), 6: (time(12), time(14))}
    assert calendar.holidays == frozenset()


def test_hours_cannot_change_after_construction() -> None:
    hours = {0: (time(9), time(17))}
    calendar = BusinessCalendar("Europe/Berlin", hours)
    hours[1] = (time(9), time(17))
    assert 1 not in calendar.hours


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timezone": "Europe/Berlln", "hours": {"mon": ["09:00", "18:00"]}}, "Unknown time zone"),
        ({"hours": {"mon": ["09:00", "18:00"]}}, "needs a 'timezone'"),
        ({"timezone": "Europe/Berlin"}, "needs 'hours'"),
        ({"timezone": "Europe/Berlin", "hours": {}}, "no opening hours"),
        ({"timezone": "Europe/Berlin", "hours": {"mon": ["18:00", "09:00"]}}, "not after they open"),
        ({"timezone": "Europe/Berlin", "hours": {"mon": ["09:00", "09:00"]}}, "not after they open"),
        ({"timezone": "Europe/Berlin", "hours": {"mon": ["22:00", "06:00"]}}, "crosses midnight"),
        ({"timezone": "Europe/Berlin", "hours": {"mon": ["9am", "18:00"]}}, "not a time like"),
        ({"timezone": "Europe/Berlin", "hours": {"mon": "09:00-18:00"}}, "must be a pair"),
        ({"timezone": "Europe/Berlin", "hours": {"funday": ["09:00", "18:00"]}}, "Unknown weekday"),
        ({"timezone": "Europe/Berlin", "hours": {7: ["09:00", "18:00"]}}, "Unknown weekday"),
        (
            {"timezone": "Europe/Berlin", "hours": {"mon": ["09:00", "18:00"]}, "holidays": ["2026-13-01"]},
            "not a date",
        ),
        (
            {"timezone": "Europe/Berlin", "hours": {"mon": ["09:00", "18:00"]}, "holidays": "2026-12-25"},
            "must be a list",
        ),
        ({"timezone": "Europe/Berlin", "hours": {"mon": ["09:00", "18:00"]}, "tz": "x"}, "Unknown business"),
    ],
)
def test_from_dict_rejects_bad_config(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BusinessCalendar.from_dict(data)


def test_calendar_closed_forever_is_a_config_error() -> None:
    every_day = frozenset(date(2026, 1, 1) + timedelta(days=n) for n in range(4 * 366))
    calendar = BusinessCalendar("Europe/Berlin", {0: (time(9), time(17))}, holidays=every_day)
    with pytest.raises(ConfigError, match="no opening hours"):
        calendar.add_business_time(berlin(2026, 1, 1, 9), h(1))


def test_calendar_refuses_naive_and_negative_input() -> None:
    with pytest.raises(InputError, match="no time zone"):
        BERLIN_OFFICE.add_business_time(datetime(2026, 3, 2, 9), h(1))
    with pytest.raises(InputError, match="negative"):
        BERLIN_OFFICE.add_business_time(berlin(2026, 3, 2, 9), -h(1))


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([buyer(berlin(2026, 3, 27, 16))], utc(2026, 3, 30, 9)),  # Friday 16:00, 4 business hours
        ([buyer(berlin(2026, 3, 27, 16)), buyer(berlin(2026, 3, 30, 9))], utc(2026, 3, 30, 9)),
        ([buyer(berlin(2026, 3, 27, 16)), reply(berlin(2026, 3, 27, 17))], None),
    ],
)
def test_internal_deadline(events: list[ThreadEvent], expected: datetime | None) -> None:
    assert internal_deadline(events, BERLIN_OFFICE, h(4)) == expected


# --- statistics ---------------------------------------------------------------------------------

NOW = utc(2026, 4, 1, 12, 0)


@pytest.mark.parametrize(
    ("pairs", "days", "expected"),
    [
        pytest.param([], 7, None, id="nothing"),
        pytest.param([(NOW - h(2), None)], 7, None, id="only-still-in-window"),
        pytest.param([(NOW - h(30), NOW - h(28))], 7, 0.0, id="on-time"),
        pytest.param([(NOW - h(30), NOW - h(6))], 7, 0.0, id="exactly-24h-is-on-time"),
        pytest.param([(NOW - h(30), NOW - h(6) + timedelta(seconds=1))], 7, 1.0, id="24h-and-a-second"),
        pytest.param([(NOW - h(25), None)], 7, 1.0, id="unanswered-past-24h"),
        pytest.param([(NOW - h(2), NOW + h(1))], 7, None, id="reply-after-now-not-known-yet"),
        pytest.param(
            [
                (NOW - h(40), NOW - h(38)),  # on time
                (NOW - h(60), NOW - h(30)),  # late
                (NOW - h(30), None),  # unanswered, late
                (NOW - h(2), None),  # still within its 24 h: not counted
                (NOW - timedelta(days=10), None),  # outside 7 days
            ],
            7,
            2 / 3,
            id="mixed",
        ),
        pytest.param([(NOW - timedelta(days=7), None)], 7, None, id="window-start-excluded"),
        pytest.param([(NOW - timedelta(days=7) + timedelta(seconds=1), None)], 7, 1.0, id="inside-window"),
        pytest.param([(NOW - timedelta(days=10), None)], 30, 1.0, id="longer-window"),
        pytest.param([(NOW + h(1), None)], 7, None, id="future-message-ignored"),
    ],
)
def test_late_response_rate(pairs: list[tuple[datetime, datetime | None]], days: int, expected: float | None) -> None:
    assert late_response_rate(pairs, NOW, days) == expected


def test_late_response_rate_needs_a_positive_window() -> None:
    with pytest.raises(InputError, match="at least one day"):
        late_response_rate([], NOW, 0)


def test_response_pairs_answer_every_waiting_message_and_drop_nrn() -> None:
    events = [
        buyer(T0 + h(5)),  # unsorted on purpose
        reply(T0 + h(2)),
        buyer(T0),
        buyer(T0 + h(1)),
        buyer(T0 + h(3)),
        nrn(T0 + h(4)),
    ]
    assert response_pairs(events) == [
        (T0, T0 + h(2)),
        (T0 + h(1), T0 + h(2)),
        (T0 + h(5), None),
    ]
    assert first_response_times(response_pairs(events)) == [h(2), h(1)]


def test_late_rate_from_thread_events_counts_each_buyer_message() -> None:
    start = NOW - h(50)
    events = [buyer(start), buyer(start + h(20)), reply(start + h(26))]  # first late, second on time
    assert late_response_rate(response_pairs(events), NOW, 7) == 0.5
    assert h(24) == AMAZON_RESPONSE_WINDOW


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([7.0], 90, 7.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 50, 2.5),  # unsorted
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([float(v) for v in range(1, 11)], 90, 9.1),
        ([1.0, 1.0, 1.0, 100.0], 50, 1.0),
    ],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == pytest.approx(expected)


@pytest.mark.parametrize("q", [0, 10, 25, 50, 75, 90, 95, 99, 100])
def test_percentile_matches_numpy(q: float) -> None:
    values = [3.5, 0.2, 18.0, 7.25, 7.25, 1.0, 44.0, 2.5, 9.0, 12.0, 5.5]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_rejects_out_of_range(q: float) -> None:
    with pytest.raises(InputError, match="between 0 and 100"):
        percentile([1.0], q)


def test_summarize_response_times() -> None:
    summary = summarize_response_times([h(3), h(1), h(2)])
    assert summary is not None
    assert (summary.count, summary.mean, summary.median) == (3, h(2), h(2))
    assert summary.p90 == h(2.8)
    assert summarize_response_times([]) is None

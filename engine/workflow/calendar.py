"""A store's business-hours calendar, for the optional internal response target.

Amazon's own 24 h clock ignores business hours (see `sla.py`); this calendar is for the store's
stricter or looser internal target ("answer within 4 business hours").

Business time is *elapsed* time inside opening hours, computed in the store's IANA time zone:
opening windows are built from local wall-clock times, then compared as UTC instants. So a window
of 09:00-18:00 is 9 real hours on any day, and on the night clocks change a 00:00-24:00 window is
23 or 25 real hours long. A close time of 00:00 (written "24:00" in config) means midnight at the
end of the day; windows that cross midnight must be split over two days.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import ConfigError, InputError

WEEKDAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
END_OF_DAY = time(0, 0)  # as a close time: midnight at the end of the day ("24:00")
# A calendar whose holidays cover this many days in a row is a configuration mistake, not a wait.
_MAX_DAYS_SEARCHED = 3 * 366


def require_aware(value: datetime, name: str) -> datetime:
    """`value` converted to UTC; naive datetimes are refused because their instant is unknown."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{name} has no time zone ({value.isoformat()}); pass a UTC-aware datetime.")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str  # IANA name, e.g. "Europe/Berlin"
    hours: Mapping[int, tuple[time, time]]  # weekday (0 = Monday) -> (open, close); missing day = closed
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"Unknown time zone {self.timezone!r} in the business calendar; "
                "use an IANA name such as 'Europe/Berlin' or 'America/New_York'."
            ) from exc
        for weekday, (opens, closes) in self.hours.items():
            if weekday not in range(7):
                raise ConfigError(f"Business-hours weekday {weekday!r} is not 0 (Monday) to 6 (Sunday).")
            if opens.tzinfo is not None or closes.tzinfo is not None:
                raise ConfigError("Business hours are local wall-clock times; give them without a time zone.")
            if closes != END_OF_DAY and closes <= opens:
                raise ConfigError(
                    f"Business hours for {WEEKDAY_NAMES[weekday]} close at {closes:%H:%M}, not after they "
                    f"open at {opens:%H:%M}; split a shift that crosses midnight over two days."
                )
        if not self.hours:
            raise ConfigError("The business calendar has no opening hours; add at least one weekday.")
        # Frozen means frozen: keep a read-only copy so the caller's dict cannot change it later.
        object.__setattr__(self, "hours", MappingProxyType(dict(self.hours)))
        object.__setattr__(self, "holidays", frozenset(self.holidays))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BusinessCalendar:
        """Build from config: {"timezone": "Europe/Berlin", "hours": {"mon": ["09:00", "18:00"], ...},
        "holidays": ["2026-12-25"]}. Weekdays may also be given as 0-6."""
        if not isinstance(data, Mapping):
            raise ConfigError("The business calendar must be a mapping with 'timezone' and 'hours'.")
        unknown = set(data) - {"timezone", "hours", "holidays"}
        if unknown:
            raise ConfigError(
                f"Unknown business calendar key(s) {sorted(unknown)}; allowed: timezone, hours, holidays."
            )
        timezone = data.get("timezone")
        if not isinstance(timezone, str) or not timezone:
            raise ConfigError("The business calendar needs a 'timezone' such as 'Europe/Berlin'.")
        raw_hours = data.get("hours")
        if not isinstance(raw_hours, Mapping):
            raise ConfigError('The business calendar needs \'hours\' like {"mon": ["09:00", "18:00"]}.')
        hours = {_parse_weekday(day): _parse_window(day, window) for day, window in raw_hours.items()}
        raw_holidays = data.get("holidays", [])
        if isinstance(raw_holidays, str) or not isinstance(raw_holidays, list | tuple | set | frozenset):
            raise ConfigError("Business calendar 'holidays' must be a list of dates like '2026-12-25'.")
        return cls(timezone=timezone, hours=hours, holidays=frozenset(_parse_date(d) for d in raw_holidays))

    def to_dict(self) -> dict[str, Any]:
        """The config form `from_dict` reads, with weekdays by name, in week order."""
        return {
            "timezone": self.timezone,
            "hours": {
                WEEKDAY_NAMES[day]: [clock_text(opens), clock_text(closes, closing=True)]
                for day, (opens, closes) in sorted(self.hours.items())
            },
            "holidays": sorted(day.isoformat() for day in self.holidays),
        }

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The UTC instant when `duration` of business time has passed after `start`.

        A zero duration returns `start` itself, even outside opening hours.
        """
        start_utc = require_aware(start, "start")
        if duration < timedelta(0):
            raise InputError(f"Cannot add a negative business duration ({duration}).")
        if duration == timedelta(0):
            return start_utc
        remaining = duration
        for opens, closes in self._windows_from(start_utc):
            begin = max(opens, start_utc)
            if begin >= closes:
                continue
            available = closes - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise AssertionError("unreachable: _windows_from raises before running out")

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Business time from `start` to `end`; negative when `end` comes first."""
        start_utc = require_aware(start, "start")
        end_utc = require_aware(end, "end")
        if end_utc < start_utc:
            return -self.business_time_between(end_utc, start_utc)
        total = timedelta(0)
        for opens, closes in self._windows_from(start_utc):
            if opens >= end_utc:
                break
            overlap = min(closes, end_utc) - max(opens, start_utc)
            if overlap > timedelta(0):
                total += overlap
        return total

    def is_open(self, at: datetime) -> bool:
        at_utc = require_aware(at, "at")
        window = self._window_on(at_utc.astimezone(self.zone).date())
        return window is not None and window[0] <= at_utc < window[1]

    def _window_on(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's opening window as UTC instants, or None when closed."""
        if day in self.holidays or day.weekday() not in self.hours:
            return None
        opens, closes = self.hours[day.weekday()]
        zone = self.zone
        # fold=0: an opening time inside the autumn repeat takes its first occurrence, and one inside
        # the spring gap maps to the instant the clock jumps over it.
        open_at = datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)
        close_day = day + timedelta(days=1) if closes == END_OF_DAY else day
        close_at = datetime.combine(close_day, closes, tzinfo=zone).astimezone(UTC)
        return open_at, close_at

    def _windows_from(self, start_utc: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Opening windows in time order, from the local day containing `start_utc` onwards."""
        day = start_utc.astimezone(self.zone).date()
        closed_in_a_row = 0
        while True:
            window = self._window_on(day)
            if window is None:
                closed_in_a_row += 1
                if closed_in_a_row > _MAX_DAYS_SEARCHED:
                    raise ConfigError(
                        f"The business calendar has no opening hours for {_MAX_DAYS_SEARCHED} days after "
                        f"{start_utc:%Y-%m-%d}; check its holidays and hours."
                    )
            else:
                closed_in_a_row = 0
                yield window
            day += timedelta(days=1)


def clock_text(value: time, *, closing: bool = False) -> str:
    """`HH:MM` as the config writes it; a closing time of midnight is "24:00" (the end of the day)."""
    return "24:00" if closing and value == END_OF_DAY else value.strftime("%H:%M")


def _parse_weekday(key: object) -> int:
    if isinstance(key, str) and key.strip().isdigit():
        key = int(key)  # JSON object keys are always strings
    if isinstance(key, int) and not isinstance(key, bool) and key in range(7):
        return key
    if isinstance(key, str) and key.strip().lower()[:3] in WEEKDAY_NAMES:
        return WEEKDAY_NAMES.index(key.strip().lower()[:3])
    raise ConfigError(f"Unknown weekday {key!r} in business hours; use mon, tue, wed, thu, fri, sat or sun.")


def _parse_window(day: object, window: object) -> tuple[time, time]:
    if isinstance(window, str) or not isinstance(window, list | tuple) or len(window) != 2:
        raise ConfigError(f'Business hours for {day} must be a pair like ["09:00", "18:00"], got {window!r}.')
    opens = _parse_clock(day, window[0], allow_end_of_day=False)
    closes = _parse_clock(day, window[1], allow_end_of_day=True)
    if closes != END_OF_DAY and closes <= opens:
        raise ConfigError(
            f"Business hours for {day} close at {window[1]}, not after they open at {window[0]}; "
            "split a shift that crosses midnight over two days."
        )
    return opens, closes


def _parse_clock(day: object, value: object, *, allow_end_of_day: bool) -> time:
    if allow_end_of_day and value == "24:00":
        return END_OF_DAY
    if isinstance(value, str):
        try:
            parsed = time.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                return parsed
    raise ConfigError(f"Business hours for {day}: {value!r} is not a time like '09:00'.")


def _parse_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"Holiday {value!r} is not a date like '2026-12-25'.")

"""The business-calendar form on the Settings page, as pure functions: the saved calendar to the form's
values and back. Validation stays in `BusinessCalendar` (via the stores service), so the form cannot save
anything the deadline code would refuse."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any

from engine.workflow.calendar import WEEKDAY_NAMES, BusinessCalendar, clock_text

REGION_TIMEZONES = {"eu": "Europe/Berlin", "na": "America/New_York", "fe": "Asia/Tokyo"}
DEFAULT_HOURS = (time(9, 0), time(18, 0))
WORKING_DAYS = WEEKDAY_NAMES[:5]


@dataclass(frozen=True)
class CalendarForm:
    timezone: str
    hours: dict[str, tuple[time, time] | None]  # weekday name -> (opens, closes), None when closed
    holidays_text: str  # one YYYY-MM-DD per line


def form_values(calendar: Mapping[str, Any] | None, region: str) -> CalendarForm:
    """What the form starts with: the saved calendar (validated when it was saved), or Monday to Friday
    09:00-18:00 in the region's zone."""
    if calendar is None:
        hours: dict[str, tuple[time, time] | None] = {
            day: DEFAULT_HOURS if day in WORKING_DAYS else None for day in WEEKDAY_NAMES
        }
        return CalendarForm(REGION_TIMEZONES.get(region, "UTC"), hours, "")
    saved = BusinessCalendar.from_dict(calendar)
    hours = {name: saved.hours.get(day) for day, name in enumerate(WEEKDAY_NAMES)}
    return CalendarForm(saved.timezone, hours, "\n".join(sorted(day.isoformat() for day in saved.holidays)))


def calendar_from_form(form: CalendarForm) -> dict[str, Any]:
    """The calendar as `BusinessCalendar.from_dict` reads it; a close of 00:00 means midnight at day's end.
    Not validated here: the stores service refuses what the calendar would."""
    return {
        "timezone": form.timezone,
        "hours": {
            day: [clock_text(opens), clock_text(closes, closing=True)]
            for day, window in form.hours.items()
            if window is not None
            for opens, closes in [window]
        },
        "holidays": [line.strip() for line in form.holidays_text.replace(",", "\n").splitlines() if line.strip()],
    }

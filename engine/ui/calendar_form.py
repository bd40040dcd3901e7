"""The business-calendar form on the Settings page, as pure functions: the saved calendar to the form's
values and back. Validation stays in `BusinessCalendar` (via the stores service), so the form cannot save
anything the deadline code would refuse."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any

from engine.workflow.calendar import WEEKDAY_NAMES

REGION_TIMEZONES = {"eu": "Europe/Berlin", "na": "America/New_York", "fe": "Asia/Tokyo"}
DEFAULT_HOURS = (time(9, 0), time(18, 0))
WORKING_DAYS = WEEKDAY_NAMES[:5]


@dataclass(frozen=True)
class CalendarForm:
    timezone: str
    hours: dict[str, tuple[time, time] | None]  # weekday name -> (opens, closes), None when closed
    holidays_text: str  # one YYYY-MM-DD per line


def form_values(calendar: Mapping[str, Any] | None, region: str) -> CalendarForm:
    """What the form starts with: the saved calendar, or Monday to Friday 09:00-18:00 in the region's zone."""
    if calendar is None:
        hours: dict[str, tuple[time, time] | None] = {
            day: DEFAULT_HOURS if day in WORKING_DAYS else None for day in WEEKDAY_NAMES
        }
        return CalendarForm(REGION_TIMEZONES.get(region, "UTC"), hours, "")
    saved = calendar.get("hours", {})
    hours = {day: _window(saved[day]) if day in saved else None for day in WEEKDAY_NAMES}
    return CalendarForm(str(calendar.get("timezone", "UTC")), hours, "\n".join(calendar.get("holidays", [])))


def calendar_from_form(form: CalendarForm) -> dict[str, Any]:
    """The calendar as `BusinessCalendar.from_dict` reads it; a close of 00:00 means midnight at day's end."""
    return {
        "timezone": form.timezone,
        "hours": {
            day: [opens.strftime("%H:%M"), "24:00" if closes == time(0, 0) else closes.strftime("%H:%M")]
            for day, window in form.hours.items()
            if window is not None
            for opens, closes in [window]
        },
        "holidays": [line.strip() for line in form.holidays_text.replace(",", "\n").splitlines() if line.strip()],
    }


def _window(pair: Any) -> tuple[time, time]:
    opens, closes = pair
    return time.fromisoformat(opens), time(0, 0) if closes == "24:00" else time.fromisoformat(closes)

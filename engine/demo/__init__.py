"""The demo's data beyond its inbox: thirty days of a team's work (`replydesk setup --demo` only)."""

from engine.demo.history import HistorySummary, load_history
from engine.demo.plan import HISTORY_DAYS, HISTORY_FILE, HistoryEntry, plan_history, read_history

__all__ = [
    "HISTORY_DAYS",
    "HISTORY_FILE",
    "HistoryEntry",
    "HistorySummary",
    "load_history",
    "plan_history",
    "read_history",
]

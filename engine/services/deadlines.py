"""The store's optional internal deadline on a conversation: its target of business time after the oldest
buyer message still awaiting a reply, counted in the store's business calendar.

Amazon's 24 h clock (`amazon_deadline`) is kept by the inbox and never depends on this: the internal
target is the store's own, stricter or looser, goal.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from engine.db.models import Conversation, Store
from engine.errors import ConfigError, InputError
from engine.workflow.calendar import BusinessCalendar, require_aware
from engine.workflow.sla import ThreadEvent, internal_deadline

log = logging.getLogger(__name__)


def store_calendar(store: Store) -> BusinessCalendar | None:
    """The store's business calendar, or None when it has none (then the target counts round the clock)."""
    if store.business_calendar is None:
        return None
    try:
        return BusinessCalendar.from_dict(store.business_calendar)
    except ConfigError as exc:
        raise ConfigError(
            f"The business calendar of store {store.name!r} is invalid: {exc} Fix it in the store's settings."
        ) from exc


def store_target(store: Store) -> timedelta | None:
    """The store's internal response target, or None when it has set none."""
    minutes = store.internal_target_minutes
    if minutes is None:
        return None
    if minutes <= 0:
        raise ConfigError(
            f"Store {store.name!r} has an internal response target of {minutes} minutes; "
            "set a positive number of minutes, or clear it to have no internal target."
        )
    return timedelta(minutes=minutes)


def compute_internal_deadline(awaiting_since: datetime | None, store: Store) -> datetime | None:
    """The internal deadline for a conversation awaiting a reply since `awaiting_since`, or None."""
    target = store_target(store)
    if awaiting_since is None or target is None:
        return None
    calendar = store_calendar(store)
    if calendar is None:
        return require_aware(awaiting_since, "awaiting_since") + target
    try:
        return internal_deadline([ThreadEvent(awaiting_since, "buyer_message")], calendar, target)
    except (ConfigError, InputError) as exc:
        raise ConfigError(
            f"Cannot compute the internal deadline for store {store.name!r}: {exc} "
            "Fix the store's business calendar or target."
        ) from exc


def refresh_internal_deadline(conversation: Conversation, store: Store, *, now: datetime) -> datetime | None:
    """Set and return `conversation.internal_deadline` from its `awaiting_since`.

    None when nothing awaits a reply or the store has no internal target. `now` is the moment of the
    refresh; it must be UTC-aware (the deadline itself depends only on when the buyer wrote).
    """
    require_aware(now, "now")
    conversation.internal_deadline = compute_internal_deadline(conversation.awaiting_since, store)
    return conversation.internal_deadline


def refresh_internal_deadline_or_warn(conversation: Conversation, store: Store, *, now: datetime) -> datetime | None:
    """`refresh_internal_deadline`, but a broken store setting leaves the internal deadline empty and is
    logged: mail intake and drafting must not stop over an optional target."""
    try:
        return refresh_internal_deadline(conversation, store, now=now)
    except ConfigError as exc:
        log.warning("%s", exc)
        conversation.internal_deadline = None
        return None

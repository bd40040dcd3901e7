"""Stores (seller accounts): their lookup, and the SLA settings admins edit — the optional internal response
target and the business-hours calendar it is counted in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Conversation, ConversationStatus, Store
from engine.errors import ConfigError, InputError
from engine.services import audit
from engine.services.deadlines import refresh_internal_deadline
from engine.workflow.calendar import BusinessCalendar, require_aware
from engine.workflow.permissions import Action, Principal, require

# A week is the longest internal target that still means something next to Amazon's 24 hours.
MAX_TARGET_MINUTES = 7 * 24 * 60


def get_store(session: Session, name: str) -> Store:
    store = session.scalar(select(Store).where(Store.name == name))
    if store is None:
        known = ", ".join(session.scalars(select(Store.name).order_by(Store.name))) or "none yet"
        raise InputError(f"No store named {name!r} (known: {known}). Create it with `replydesk store-add {name!r}`.")
    return store


def ensure_store(
    session: Session,
    name: str,
    *,
    region: str = "eu",
    marketplaces: Sequence[str] = (),
    sender_address: str | None = None,
) -> Store:
    store = session.scalar(select(Store).where(Store.name == name))
    if store is None:
        store = Store(
            name=name, region=region, marketplaces=list(marketplaces), sender_address=sender_address, allow_list=[]
        )
        session.add(store)
        session.flush()
    return store


def list_stores(session: Session) -> list[Store]:
    return list(session.scalars(select(Store).order_by(Store.name)))


@dataclass(frozen=True)
class StoreSla:
    store_id: int
    name: str
    target_minutes: int | None  # None: no internal target, only Amazon's 24 h
    calendar: dict[str, Any] | None  # BusinessCalendar.to_dict(); None: the target counts round the clock


def store_sla(session: Session, principal: Principal, store_id: int) -> StoreSla:
    require(principal, Action.MANAGE_STORES, store_id=store_id)
    store = _store(session, store_id)
    return StoreSla(store.id, store.name, store.internal_target_minutes, store.business_calendar)


def update_store_sla(
    session: Session,
    principal: Principal,
    store_id: int,
    *,
    target_minutes: int | None,
    calendar: Mapping[str, Any] | None,
    now: datetime,
) -> int:
    """Set the store's internal target and business calendar (validated, saved in canonical form), then
    recompute the internal deadline of every conversation still awaiting a reply. Returns how many."""
    require(principal, Action.MANAGE_STORES, store_id=store_id)
    require_aware(now, "now")
    store = _store(session, store_id)
    if target_minutes is not None and not 0 < target_minutes <= MAX_TARGET_MINUTES:
        raise InputError(
            f"The internal target must be between 1 and {MAX_TARGET_MINUTES} minutes (a week), got {target_minutes}; "
            "leave it empty for no internal target."
        )
    try:
        canonical = BusinessCalendar.from_dict(calendar).to_dict() if calendar is not None else None
    except ConfigError as exc:
        raise InputError(f"The business calendar of {store.name!r} was not saved: {exc}") from exc
    before = {"target_minutes": store.internal_target_minutes, "calendar": store.business_calendar}
    store.internal_target_minutes, store.business_calendar = target_minutes, canonical
    waiting = session.scalars(
        select(Conversation).where(
            Conversation.store_id == store.id,
            Conversation.status.in_((ConversationStatus.OPEN, ConversationStatus.HOLD)),
            Conversation.awaiting_since.is_not(None),
        )
    ).all()
    for conversation in waiting:
        refresh_internal_deadline(conversation, store, now=now)
    audit.record(
        session,
        "store.sla",
        "store",
        store.id,
        actor_id=principal.agent_id,
        before=before,
        after={"target_minutes": target_minutes, "calendar": canonical},
    )
    session.flush()
    return len(waiting)


def _store(session: Session, store_id: int) -> Store:
    store = session.get(Store, store_id)
    if store is None:
        raise InputError(f"Store {store_id} does not exist (any more); reload the page.")
    return store

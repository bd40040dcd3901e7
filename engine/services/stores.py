"""Stores (seller accounts) and their lookup."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Store
from engine.errors import InputError


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

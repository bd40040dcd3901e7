"""Audit trail: who did what, when, with the state before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine.db.models import AuditEvent


def record(
    session: Session,
    action: str,
    entity: str,
    entity_id: int | None,
    *,
    actor_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(action=action, entity=entity, entity_id=entity_id, actor_id=actor_id, before=before, after=after)
    session.add(event)
    return event

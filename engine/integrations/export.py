"""The full export: JSON Lines, one conversation per line with every message, draft, decision, send and note.

Each line: `{"schema": "replydesk.conversation", "version": 1, "conversation": {...}, "messages": [...],
"drafts": [...], "sends": [...], "notes": [...], "decisions": [...]}`; columns keep their database names,
timestamps are ISO 8601 UTC, raw mail bytes stay out (`raw_sha256` names them). Conversations are read in
id order in batches of plain rows (no ORM identity map), so memory stays flat however many there are.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.orm import Session

from engine.db.models import AuditEvent, Conversation, Draft, Message, Note, OutboxItem, Store
from engine.errors import InputError

__all__ = ["EXPORT_SCHEMA", "EXPORT_VERSION", "export_lines", "export_records"]

EXPORT_SCHEMA = "replydesk.conversation"
EXPORT_VERSION = 1
BATCH = 200
_CHILDREN: dict[str, Table] = {
    "messages": Message.__table__,  # type: ignore[dict-item]
    "drafts": Draft.__table__,  # type: ignore[dict-item]
    "sends": OutboxItem.__table__,  # type: ignore[dict-item]
    "notes": Note.__table__,  # type: ignore[dict-item]
}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    return value


def _row(mapping: Any) -> dict[str, Any]:
    return {key: _plain(value) for key, value in mapping.items()}


def _children(session: Session, table: Table, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    query = select(table).where(table.c.conversation_id.in_(ids)).order_by(table.c.id)
    for mapping in session.execute(query).mappings():
        grouped[mapping["conversation_id"]].append(_row(mapping))
    return grouped


def _decisions(session: Session, ids: list[int], drafts: dict[int, list[dict[str, Any]]]) -> dict[int, list[Any]]:
    """Audit events on the conversations and their drafts: approvals, rejections, status changes, notes."""
    draft_owner = {d["id"]: conversation_id for conversation_id, rows in drafts.items() for d in rows}
    audit = AuditEvent.__table__
    where = and_(audit.c.entity == "conversation", audit.c.entity_id.in_(ids))
    if draft_owner:
        where = or_(where, and_(audit.c.entity == "draft", audit.c.entity_id.in_(list(draft_owner))))
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for mapping in session.execute(select(audit).where(where).order_by(audit.c.id)).mappings():
        owner = mapping["entity_id"] if mapping["entity"] == "conversation" else draft_owner[mapping["entity_id"]]
        grouped[owner].append(_row(mapping))
    return grouped


def export_records(
    session: Session, *, store: str | None = None, since: datetime | None = None, batch: int = BATCH
) -> Iterator[dict[str, Any]]:
    """One record per conversation, in id order."""
    table = Conversation.__table__
    query = select(table, Store.name.label("store")).join(Store, Store.id == table.c.store_id)
    if store is not None:
        store_id = session.scalar(select(Store.id).where(Store.name == store))
        if store_id is None:
            raise InputError(f"There is no store named {store!r}. List the stores with `replydesk store-list`.")
        query = query.where(table.c.store_id == store_id)
    if since is not None:
        query = query.where(or_(table.c.updated_at >= since, table.c.last_message_at >= since))
    last_id = 0
    while True:
        page = query.where(table.c.id > last_id).order_by(table.c.id).limit(batch)
        conversations = [_row(mapping) for mapping in session.execute(page).mappings()]
        if not conversations:
            return
        ids = [c["id"] for c in conversations]
        children = {name: _children(session, child, ids) for name, child in _CHILDREN.items()}
        decisions = _decisions(session, ids, children["drafts"])
        for conversation in conversations:
            record: dict[str, Any] = {"schema": EXPORT_SCHEMA, "version": EXPORT_VERSION, "conversation": conversation}
            for name in _CHILDREN:
                record[name] = children[name].get(conversation["id"], [])
            record["decisions"] = decisions.get(conversation["id"], [])
            yield record
        last_id = ids[-1]


def export_lines(session: Session, **filters: Any) -> Iterator[str]:
    """`export_records` as JSON Lines (each ends with a newline)."""
    for record in export_records(session, **filters):
        yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"

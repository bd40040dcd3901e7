"""answered/cleared times on buyer messages and the edit distance on drafts, recorded for the statistics

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 12:00:00

Existing rows are filled in here, by the definitions of `engine.services.stats` (the code that records
them from now on is `engine.services.stats_record`): a buyer message's answer is the first reply in its
conversation at or after it (an outgoing message or a sent outbox item), its clearing the first "no
response needed" at or after it; a sent draft's edit distance is the normalised one from the draft to the
sent text, ignoring outer whitespace. One pass over each table, in batches.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from engine.db.base import UTCDateTime
from engine.workflow.textdiff import normalized_edit_distance

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 2_000
INDEXES = (
    (
        "ix_message_answers",
        "message",
        ["kind", "direction", "received_at", "conversation_id", "answered_at", "cleared_at"],
    ),
    (
        "ix_draft_decisions",
        "draft",
        [
            "decided_at",
            "status",
            "edit_distance",
            "decided_by_id",
            "intent",
            "language",
            "template_id",
            "drafter",
            "message_id",
            "conversation_id",
        ],
    ),
)

message = sa.table(
    "message",
    sa.column("id", sa.Integer),
    sa.column("conversation_id", sa.Integer),
    sa.column("direction", sa.String),
    sa.column("kind", sa.String),
    sa.column("received_at", UTCDateTime()),
    sa.column("answered_at", UTCDateTime()),
    sa.column("cleared_at", UTCDateTime()),
)
outbox_item = sa.table(
    "outbox_item",
    sa.column("conversation_id", sa.Integer),
    sa.column("state", sa.String),
    sa.column("sent_at", UTCDateTime()),
)
audit_event = sa.table(
    "audit_event",
    sa.column("entity", sa.String),
    sa.column("entity_id", sa.Integer),
    sa.column("action", sa.String),
    sa.column("at", UTCDateTime()),
)
draft = sa.table(
    "draft",
    sa.column("id", sa.Integer),
    sa.column("text", sa.Text),
    sa.column("final_text", sa.Text),
    sa.column("edit_distance", sa.Float),
)


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("answered_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cleared_at", UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("draft") as batch:
        batch.add_column(sa.Column("edit_distance", sa.Float(), nullable=True))
    connection = op.get_bind()
    _backfill_answers(connection)
    _backfill_edit_distances(connection)
    for name, table, columns in INDEXES:  # after the backfill: one build instead of an update per row
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("draft") as batch:
        batch.drop_column("edit_distance")
    with op.batch_alter_table("message") as batch:
        batch.drop_column("cleared_at")
        batch.drop_column("answered_at")


def _times_by_conversation(
    connection: sa.Connection, query: sa.Select[Any] | sa.CompoundSelect
) -> dict[int, list[datetime]]:
    times: defaultdict[int, list[datetime]] = defaultdict(list)
    for conversation_id, at in connection.execute(query):
        times[conversation_id].append(at)
    for found in times.values():
        found.sort()
    return times


def _first_at_or_after(moment: datetime, times: list[datetime]) -> datetime | None:
    index = bisect_left(times, moment)
    return times[index] if index < len(times) else None


def _backfill_answers(connection: sa.Connection) -> None:
    replies = _times_by_conversation(
        connection,
        sa.union_all(
            sa.select(message.c.conversation_id, message.c.received_at).where(
                message.c.direction == "out", message.c.conversation_id.is_not(None)
            ),
            sa.select(outbox_item.c.conversation_id, outbox_item.c.sent_at).where(
                outbox_item.c.state == "sent", outbox_item.c.sent_at.is_not(None)
            ),
        ),
    )
    clearings = _times_by_conversation(
        connection,
        sa.select(audit_event.c.entity_id, audit_event.c.at).where(
            audit_event.c.entity == "conversation",
            audit_event.c.action == "conversation.no_response_needed",
            audit_event.c.entity_id.is_not(None),
        ),
    )
    update = (
        message.update()
        .where(message.c.id == sa.bindparam("message_id"))
        .values(answered_at=sa.bindparam("answered"), cleared_at=sa.bindparam("cleared"))
    )
    buyer_messages = sa.select(message.c.id, message.c.conversation_id, message.c.received_at).where(
        message.c.direction == "in", message.c.kind == "buyer_message", message.c.conversation_id.is_not(None)
    )
    after = 0
    while rows := connection.execute(
        buyer_messages.where(message.c.id > after).order_by(message.c.id).limit(BATCH)
    ).all():
        answers = []
        for message_id, conversation_id, received in rows:
            answered = _first_at_or_after(received, replies.get(conversation_id, []))
            cleared = _first_at_or_after(received, clearings.get(conversation_id, []))
            if answered is not None or cleared is not None:
                answers.append({"message_id": message_id, "answered": answered, "cleared": cleared})
        if answers:
            connection.execute(update, answers)
        after = rows[-1][0]


def _backfill_edit_distances(connection: sa.Connection) -> None:
    update = draft.update().where(draft.c.id == sa.bindparam("draft_id")).values(edit_distance=sa.bindparam("distance"))
    sent = sa.select(draft.c.id, draft.c.text, draft.c.final_text).where(draft.c.final_text.is_not(None))
    after = 0
    while rows := connection.execute(sent.where(draft.c.id > after).order_by(draft.c.id).limit(BATCH)).all():
        connection.execute(
            update,
            [
                {"draft_id": draft_id, "distance": normalized_edit_distance((text or "").strip(), final.strip())}
                for draft_id, text, final in rows
            ],
        )
        after = rows[-1][0]

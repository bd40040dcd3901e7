"""indexes for the queue and statistics at scale (measured by evals/bench_scale.py)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 09:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_message_timeline", "message", ["direction", "received_at", "kind", "conversation_id", "intent", "language"]),
    ("ix_message_conversation_thread", "message", ["conversation_id", "direction", "received_at"]),
    ("ix_draft_decided_at", "draft", ["decided_at"]),
    ("ix_draft_pending", "draft", ["status", "conversation_id"]),
    ("ix_draft_created_at", "draft", ["created_at"]),
    ("ix_outbox_item_sent", "outbox_item", ["state", "sent_at", "conversation_id"]),
    ("ix_audit_action_at", "audit_event", ["action", "at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)

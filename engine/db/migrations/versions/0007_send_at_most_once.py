"""send: at most once (uncertain sends, per-mailbox Sent-folder filing, attempts)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db.base import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("mailbox", sa.Column("files_sent_mail", sa.Boolean(), nullable=True))
    op.add_column("outbox_item", sa.Column("lease_until", UTCDateTime(timezone=True), nullable=True))
    op.add_column("outbox_item", sa.Column("handed_over_at", UTCDateTime(timezone=True), nullable=True))
    # A send interrupted before this version may have reached the server: its lease ends now and it counts
    # as handed over, so recovery checks the Sent folder (or asks a human) instead of sending it again.
    op.execute("UPDATE outbox_item SET handed_over_at = updated_at, lease_until = updated_at WHERE state = 'sending'")


def downgrade() -> None:
    op.drop_column("outbox_item", "handed_over_at")
    op.drop_column("outbox_item", "lease_until")
    op.drop_column("mailbox", "files_sent_mail")

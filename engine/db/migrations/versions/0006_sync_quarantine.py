"""sync: quarantined mail, interrupted runs, per-mailbox sync errors, arrival times

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 02:00:00

Adds the quarantine table (mails that could be stored neither parsed nor raw), the mailbox's sync claim
(which process syncs it, until when) and creation time (the floor for arrival dates), the message's flags
(why a human should look twice) and the run's quarantine count. Existing mailboxes count as created now.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db.base import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("mailbox") as batch_op:
        batch_op.add_column(sa.Column("sync_owner", sa.String(120), nullable=True))
        batch_op.add_column(sa.Column("sync_lease_until", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("created_at", UTCDateTime(timezone=True), nullable=False, server_default=sa.func.now())
        )
    with op.batch_alter_table("message") as batch_op:
        batch_op.add_column(sa.Column("flags", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("sync_run") as batch_op:
        batch_op.add_column(sa.Column("quarantined", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "quarantined_mail",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("store_id", BigId, sa.ForeignKey("store.id", ondelete="CASCADE"), nullable=False),
        sa.Column("mailbox_id", BigId, sa.ForeignKey("mailbox.id", ondelete="CASCADE"), nullable=False),
        sa.Column("uidvalidity", BigId, nullable=False),
        sa.Column("uid", BigId, nullable=False),
        sa.Column("size", BigId, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw_sha256", sa.String(64), sa.ForeignKey("raw_mail.sha256"), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_row_id", BigId, sa.ForeignKey("message.id", ondelete="SET NULL"), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("retried_at", UTCDateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("mailbox_id", "uidvalidity", "uid"),
    )
    op.create_index("ix_quarantined_mail_store_id", "quarantined_mail", ["store_id"])
    op.create_index("ix_quarantined_mail_mailbox_id", "quarantined_mail", ["mailbox_id"])


def downgrade() -> None:
    op.drop_index("ix_quarantined_mail_mailbox_id", table_name="quarantined_mail")
    op.drop_index("ix_quarantined_mail_store_id", table_name="quarantined_mail")
    op.drop_table("quarantined_mail")
    with op.batch_alter_table("sync_run") as batch_op:
        batch_op.drop_column("quarantined")
    with op.batch_alter_table("message") as batch_op:
        batch_op.drop_column("flags")
    with op.batch_alter_table("mailbox") as batch_op:
        batch_op.drop_column("created_at")
        batch_op.drop_column("sync_lease_until")
        batch_op.drop_column("sync_owner")

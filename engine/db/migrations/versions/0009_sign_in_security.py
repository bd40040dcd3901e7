"""sign-in security: throttling and lock-out, single sign-on identity binding, session generations

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 02:00:00
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

from engine.db.base import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.add_column(sa.Column("username_key", sa.String(length=320), nullable=False, server_default=""))
        batch.add_column(sa.Column("sso_issuer", sa.String(length=400), nullable=True))
        batch.add_column(sa.Column("sso_subject", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("demo_password", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_agent_username_key", "agent", ["username_key"])
    # Fold in Python, not SQL: SQL lower() folds some characters (the Kelvin sign) differently.
    agent = sa.table("agent", sa.column("id", sa.Integer), sa.column("username", sa.String))
    connection = op.get_bind()
    for agent_id, username in connection.execute(sa.select(agent.c.id, agent.c.username)).all():
        key = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username.strip()).casefold())
        connection.execute(sa.text("UPDATE agent SET username_key = :key WHERE id = :id"), {"key": key, "id": agent_id})
    op.create_table(
        "sign_in_throttle",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_throttle")),
    )


def downgrade() -> None:
    op.drop_table("sign_in_throttle")
    op.drop_index("ix_agent_username_key", table_name="agent")
    with op.batch_alter_table("agent") as batch:
        batch.drop_column("demo_password")
        batch.drop_column("session_generation")
        batch.drop_column("sso_subject")
        batch.drop_column("sso_issuer")
        batch.drop_column("username_key")

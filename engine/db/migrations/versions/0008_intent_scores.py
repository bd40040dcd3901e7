"""intent: all intent scores, the secondary intent and the review flag on buyer messages

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The review flag (`intent_needs_review`) exists since 0001; messages classified before this version keep
    # no scores (NULL) and no secondary intent.
    op.add_column("message", sa.Column("intent_scores", sa.JSON(), nullable=True))
    op.add_column("message", sa.Column("intent_secondary", sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column("message", "intent_secondary")
    op.drop_column("message", "intent_scores")

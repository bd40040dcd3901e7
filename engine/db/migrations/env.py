"""Alembic environment: runs against the engine handed in by `engine.db.session.migrate`."""

from __future__ import annotations

from alembic import context

from engine.db import models  # noqa: F401  (registers the tables)
from engine.db.base import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()

"""Throwaway databases for tests and benchmarks: a migrated SQLite file, or a PostgreSQL database created
for the run and dropped after it, so parallel runs and reruns never see each other's rows.

PostgreSQL is reached at REPLYDESK_TEST_POSTGRES (default 127.0.0.1:5432, user postgres, trust auth).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from engine.db import Database
from engine.errors import DatabaseError

POSTGRES_ADMIN_URL = os.environ.get("REPLYDESK_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def _admin() -> Engine:
    # pre-ping: the fault suite restarts the server while a throwaway database is in use
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except OperationalError as exc:
        admin.dispose()
        raise DatabaseError(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({exc.orig}). Start it (`make postgres`) "
            "or point REPLYDESK_TEST_POSTGRES at a server: the tests and benchmarks run on SQLite and PostgreSQL."
        ) from exc
    return admin


@contextmanager
def throwaway_database(backend: str, folder: Path) -> Iterator[Database]:
    """A fresh, migrated database of `backend`; SQLite lives in `folder`."""
    if backend == "sqlite":
        db = Database(f"sqlite:///{folder / f'replydesk-{uuid.uuid4().hex[:8]}.db'}")
        try:
            db.migrate()
            yield db
        finally:
            db.dispose()
        return
    name = f"replydesk_tmp_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        db.migrate()
        yield db
    finally:
        db.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

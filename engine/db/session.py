"""Engine and session factory. The caller owns the transaction: `with db.transaction() as session:`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


READ_ONLY = "replydesk_read_only"  # execution option of the connections `Database.read()` uses


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite would start transactions lazily (so a savepoint released first would commit on its own);
    # take control and emit BEGIN ourselves, as SQLAlchemy's docs recommend.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (the app) never block the sync writer
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Reads through the OS page cache instead of copying pages: statistics over months of rows run faster.
    cursor.execute("PRAGMA mmap_size=268435456")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, future=True, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(connection: Any) -> None:
    # A unit of work that may write takes the write lock up front (IMMEDIATE): concurrent writers then wait
    # (busy_timeout) instead of failing on a lock upgrade. Reads begin DEFERRED: in WAL mode they never take
    # the write lock, so a page load or a worker's read never makes an agent's approval wait.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    try:
        command.upgrade(alembic_config(engine), "head")
    except OperationalError as exc:
        raise DatabaseError(
            f"Cannot reach the database at {engine.url.render_as_string(hide_password=True)}: "
            f"{exc.orig}. Check REPLYDESK_DATABASE_URL and that the server is running."
        ) from exc


class Database:
    """One per process: an engine and its session factory."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        migrate(self.engine)

    def check_migrated(self) -> None:
        try:
            tables = set(inspect(self.engine).get_table_names())
        except OperationalError as exc:
            raise DatabaseError(
                f"Cannot reach the database: {exc.orig}. Check REPLYDESK_DATABASE_URL and the server."
            ) from exc
        if "conversation" not in tables:
            raise DatabaseError("The database has no ReplyDesk tables yet. Run `replydesk migrate` first.")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work that may write: commits on success, rolls back on any exception. Keep it short:
        no network call, model load or password hash inside (on SQLite it holds the only write lock)."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work: on SQLite it never takes the write lock; nothing is committed."""
        with self.read_sessions() as session, session.begin():
            yield session
            session.rollback()

    def dispose(self) -> None:
        self.engine.dispose()

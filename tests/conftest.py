"""Shared fixtures. Database tests run against SQLite and PostgreSQL (a throwaway database per run).

PostgreSQL must be reachable at REPLYDESK_TEST_POSTGRES (default 127.0.0.1:5432, trust auth); when it is
not, the tests that need it fail with a clear message: they never skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from engine.components import Components
from engine.db import Database
from engine.settings import Settings
from evals.databases import BACKENDS, throwaway_database

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session", params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One migrated database per backend for the whole run; tests isolate through `session`."""
    with throwaway_database(request.param, tmp_path_factory.mktemp(request.param)) as db:
        yield db


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database of its own, for tests that commit (workers, sync runs, several processes).

    Parametrize with `@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)`.
    """
    with throwaway_database(getattr(request, "param", "sqlite"), tmp_path) as db:
        yield db


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test: services' commits are savepoints."""
    connection = database.engine.connect()
    transaction = connection.begin()
    db_session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield db_session
    finally:
        db_session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults pointed at a temporary data folder, with the fast fake NLP backend."""
    return Settings(data_dir=tmp_path / "data", knowledge_dir=REPO_ROOT / "knowledge", nlp_backend="fake")


@pytest.fixture(scope="session")
def fake_components(tmp_path_factory: pytest.TempPathFactory) -> Components:
    """Pipeline components on the fake NLP backend (hashing embedder), built once per run from `knowledge/`."""
    from engine.components import build_components

    data_dir = tmp_path_factory.mktemp("components")
    return build_components(Settings(data_dir=data_dir, knowledge_dir=REPO_ROOT / "knowledge", nlp_backend="fake"))

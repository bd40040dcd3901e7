"""Shared fixtures. Database tests run against SQLite and PostgreSQL (a throwaway database per run).

PostgreSQL must be reachable at REPLYDESK_TEST_POSTGRES (default 127.0.0.1:5432, trust auth); when it is
not, the tests that need it fail with a clear message: they never skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from engine.components import Components
from engine.db import Database
from engine.settings import Settings
from evals.databases import BACKENDS, throwaway_database
from tests.repo_guard import GUARD_VARIABLE, install_from_environment

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent

# Nothing the tests run, in this process or in the processes they start, may read beside the repository.
os.environ[GUARD_VARIABLE] = str(REPO_ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(REPO_ROOT / "tests" / "guard"), str(REPO_ROOT), os.environ.get("PYTHONPATH")])
)
install_from_environment()


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
def fake_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data folder `fake_components` trains its intent model in; copy its `models/intent-fake` into a
    test's data folder to skip training again."""
    return tmp_path_factory.mktemp("components")


@pytest.fixture(scope="session")
def fake_components(fake_data_dir: Path) -> Components:
    """Pipeline components on the fake NLP backend (hashing embedder), built once per run from `knowledge/`."""
    from engine.components import build_components

    return build_components(Settings(data_dir=fake_data_dir, knowledge_dir=REPO_ROOT / "knowledge", nlp_backend="fake"))


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory, fake_components: Components, fake_data_dir: Path) -> Path:
    """A data folder holding the demo database (`replydesk setup --demo`) and the fake intent model, built once
    per run; tests work on a copy (`demo_copy`)."""
    from engine.components import intent_model_directory
    from engine.setup import setup

    del fake_components  # it trained the intent model in fake_data_dir: reuse it instead of training again
    data_dir = tmp_path_factory.mktemp("demo-data")
    settings = Settings(data_dir=data_dir, knowledge_dir=REPO_ROOT / "knowledge", nlp_backend="fake")
    trained = intent_model_directory(settings.with_overrides(data_dir=fake_data_dir))
    shutil.copytree(trained, intent_model_directory(settings))
    for _line in setup(settings, demo=True):
        pass
    return data_dir


@pytest.fixture
def demo_copy(demo_data: Path, tmp_path: Path) -> Path:
    """A private copy of the demo data folder (database, models) for one test."""
    data_dir = tmp_path / "data"
    shutil.copytree(demo_data, data_dir)
    return data_dir


@pytest.fixture
def app_env(demo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """The app pointed at a private copy of the demo, through the environment like in production."""
    monkeypatch.setenv("REPLYDESK_DATA_DIR", str(demo_copy))
    monkeypatch.setenv("REPLYDESK_DATABASE_URL", f"sqlite:///{demo_copy / 'replydesk.db'}")
    monkeypatch.setenv("REPLYDESK_NLP", "fake")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    db = Database(f"sqlite:///{demo_copy / 'replydesk.db'}")
    yield db
    db.dispose()

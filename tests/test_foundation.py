"""Schema, settings and taxonomy: the ground everything else stands on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session

from engine.db import Database
from engine.db.base import Base
from engine.db.models import Store
from engine.errors import ConfigError, DatabaseError
from engine.settings import Settings
from engine.taxonomy import INTENTS, LANGUAGES, MARKETPLACES, load_taxonomy
from tests.conftest import REPO_ROOT


def test_migrations_produce_exactly_the_models(database: Database) -> None:
    with database.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_migrate_is_idempotent(database: Database) -> None:
    database.migrate()
    database.check_migrated()


def test_timestamps_come_back_as_aware_utc(session: Session) -> None:
    berlin = timezone(timedelta(hours=1))
    store = Store(name="tz", marketplaces=[], allow_list=[], created_at=datetime(2026, 11, 27, 10, 0, tzinfo=berlin))
    session.add(store)
    session.flush()
    session.expire(store)
    assert store.created_at == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert store.created_at.tzinfo is not None


def test_naive_timestamps_are_refused(session: Session) -> None:
    session.add(Store(name="naive", marketplaces=[], allow_list=[], created_at=datetime(2026, 1, 1)))
    with pytest.raises(Exception, match="naive datetime"):
        session.flush()


def test_unreachable_database_says_what_to_do() -> None:
    db = Database("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(DatabaseError, match="REPLYDESK_DATABASE_URL"):
        db.migrate()


def test_settings_defaults_are_embedded(tmp_path: Path) -> None:
    settings = Settings.from_env({}, env_file=tmp_path / "missing.env")
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert settings.nlp_backend == "real" and not settings.llm_configured and not settings.spapi_configured


def test_settings_read_env_file_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nREPLYDESK_NLP=fake\nOPENAI_API_KEY='sk-file'\nREPLYDESK_SYNC_INTERVAL=30\n")
    settings = Settings.from_env({"REPLYDESK_SYNC_INTERVAL": "15"}, env_file=env_file)
    assert settings.nlp_backend == "fake" and settings.openai_api_key == "sk-file"
    assert settings.sync_interval_seconds == 15
    assert "sk-file" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REPLYDESK_NLP": "gpu"}, "REPLYDESK_NLP must be one of"),
        ({"REPLYDESK_SYNC_INTERVAL": "soon"}, "whole number"),
        ({"REPLYDESK_SYNC_INTERVAL": "0"}, "at least 1"),
        ({"REPLYDESK_SPAPI_REGION": "mars"}, "na, eu or fe"),
        ({"REPLYDESK_SPAPI_SANDBOX": "maybe"}, "true or false"),
    ],
)
def test_broken_settings_say_what_is_wrong(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env, env_file=tmp_path / "none")


def test_broken_env_file_names_the_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("GOOD=1\nthis line is wrong\n")
    with pytest.raises(ConfigError, match=r"\.env:2"):
        Settings.from_env({}, env_file=env_file)


def test_taxonomy_ids_are_unique_and_complete() -> None:
    taxonomy = json.loads((REPO_ROOT / "knowledge" / "taxonomy.json").read_text(encoding="utf-8"))
    assert list(INTENTS) == [i["id"] for i in taxonomy["intents"]] and len(set(INTENTS)) == 13
    assert list(LANGUAGES) == taxonomy["languages"] and len(set(LANGUAGES)) == 13
    assert set(MARKETPLACES) == set(taxonomy["marketplaces"])
    assert "other" in INTENTS and "no_response_needed" in INTENTS


@pytest.mark.parametrize(
    ("host", "code"),
    [
        ("marketplace.amazon.de", "DE"),
        ("m.marketplace.amazon.co.jp", "JP"),
        ("marketplace.amazon.com.mx", "MX"),
        ("marketplace.amazon.com", "US"),
        ("marketplace.amazon.co.uk", "UK"),
        ("example.com", None),
    ],
)
def test_marketplace_by_relay_host(host: str, code: str | None) -> None:
    found = load_taxonomy().marketplace_by_host(host)
    assert (found.code if found else None) == code

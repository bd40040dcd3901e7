"""The worker's drafting step: new mail is drafted and routed without anyone running `replydesk process`,
models load only when there is work, and a lead's knowledge changes reach the next drafts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.components import Components, Knowledge, build_components, intent_model_directory
from engine.db import Database
from engine.db.models import Agent, Draft, KnowledgeItem, Message
from engine.services.inbox import store_mail
from engine.services.pipeline import PipelineWorker, knowledge_stamp
from engine.services.stores import ensure_store
from engine.settings import Settings
from engine.workflow.permissions import Role
from tests.conftest import BACKENDS
from tests.helpers import relay_mail

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(settings: Settings, fake_components: Components, fake_data_dir: Path) -> Settings:
    """The test's settings with the run's trained fake intent model already in place (training takes long)."""
    del fake_components  # trains the model in fake_data_dir
    shutil.copytree(
        intent_model_directory(settings.with_overrides(data_dir=fake_data_dir)), intent_model_directory(settings)
    )
    return settings


class CountingBuilder:
    def __init__(self) -> None:
        self.builds = 0

    def __call__(self, settings: Settings, knowledge: Knowledge) -> Components:
        self.builds += 1
        return build_components(settings, knowledge)


def _mail(db: Database, message_id: str, order_id: str) -> None:
    with db.transaction() as session:
        store = ensure_store(session, "EU", sender_address="service@eu.example")
        store_mail(session, store, relay_mail(message_id=message_id, order_id=order_id), source=message_id)


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_worker_drafts_new_mail_and_rebuilds_only_when_knowledge_changes(
    fresh_database: Database, settings: Settings
) -> None:
    builder = CountingBuilder()
    worker = PipelineWorker(fresh_database, settings, build=builder)
    result, assignments = worker.run_once()
    assert (result.messages, assignments, builder.builds) == (0, [], 0)  # idle: no models loaded

    _mail(fresh_database, "<a@x>", "302-1111111-1111111")
    result, _ = worker.run_once()
    assert (result.messages, result.drafts, builder.builds) == (1, 1, 1)
    _mail(fresh_database, "<b@x>", "302-2222222-2222222")
    assert worker.run_once()[0].drafts == 1 and builder.builds == 1  # same knowledge: components reused

    with fresh_database.transaction() as session:
        session.add(KnowledgeItem(question="Where is it?", answer="On its way.", intent="order_status", language="en"))
    _mail(fresh_database, "<c@x>", "302-3333333-3333333")
    assert worker.run_once()[0].drafts == 1 and builder.builds == 2  # a new past answer: rebuilt
    with fresh_database.transaction() as session:
        assert session.scalar(select(Message).where(Message.processed_at.is_(None))) is None
        assert len(session.scalars(select(Draft)).all()) == 3


@pytest.mark.parametrize("fresh_database", ["sqlite"], indirect=True)
def test_worker_routes_waiting_conversations_when_an_agent_joins(fresh_database: Database, settings: Settings) -> None:
    worker = PipelineWorker(fresh_database, settings)
    _mail(fresh_database, "<a@x>", "302-1111111-1111111")
    _, assignments = worker.run_once()
    assert [a.agent_id for a in assignments] == [None]  # nobody to give it to yet
    with fresh_database.transaction() as session:
        store = ensure_store(session, "EU")
        agent = Agent(username="anna", display_name="Anna", role=Role.AGENT, languages=["de", "en"])
        agent.stores = [store]
        session.add(agent)
        session.flush()
        anna = agent.id
    result, assignments = worker.run_once()
    assert result.messages == 0 and [a.agent_id for a in assignments] == [anna]


@pytest.mark.parametrize("fresh_database", ["sqlite"], indirect=True)
def test_stamp_follows_the_current_intent_model(fresh_database: Database, settings: Settings) -> None:
    directory = intent_model_directory(settings)
    with fresh_database.transaction() as session:
        before = knowledge_stamp(session, directory)
        (directory / "current").write_text("v2\n", encoding="utf-8")
        assert knowledge_stamp(session, directory) != before


@pytest.mark.parametrize("fresh_database", ["sqlite"], indirect=True)
def test_worker_command_drafts_what_arrived(fresh_database: Database, settings: Settings) -> None:
    _mail(fresh_database, "<a@x>", "302-1111111-1111111")
    env = {
        **os.environ,
        "REPLYDESK_DATABASE_URL": fresh_database.url,
        "REPLYDESK_DATA_DIR": str(settings.data_dir),
        "REPLYDESK_NLP": "fake",
    }
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "worker", "--once"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "drafting: 1 buyer messages classified, 1 drafts written" in done.stdout
    with fresh_database.transaction() as session:
        assert session.scalars(select(Draft)).one().message_id is not None

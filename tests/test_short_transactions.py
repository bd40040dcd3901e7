"""Short transactions: slow work (an LLM, models, the network) never holds the database, so an agent's approval
goes through while the worker drafts a batch against an LLM that takes seconds per answer."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time

import httpx
import openai
import pytest
from sqlalchemy import select, text

from engine.components import Components
from engine.db import Database
from engine.db.models import Agent, Conversation, Draft, DraftStatus, Message
from engine.drafting.llm import LlmDrafter
from engine.services import conversations as actions
from engine.services.agents import principal_for
from engine.services.inbox import store_mail
from engine.services.pipeline import process_and_route, process_pending
from engine.services.stores import ensure_store
from engine.workflow.permissions import Role
from tests.conftest import BACKENDS, REPO_ROOT
from tests.fake_llm import FakeLlmServer, completion, mock_http
from tests.helpers import relay_mail

LLM_DELAY = 5.0
BATCH = 200


class SlowLlm:
    """Answers each request after LLM_DELAY seconds, until `release` is set; then at once."""

    def __init__(self) -> None:
        self.first_request = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.first_request.set()
        self.release.wait(LLM_DELAY)
        return completion(json.dumps({"reply": "Your parcel is on its way.", "sources": []}))


def _llm_components(components: Components, llm: SlowLlm) -> Components:
    client = openai.OpenAI(api_key="k", base_url="http://llm.test/v1", http_client=mock_http(FakeLlmServer(llm)))
    drafter = LlmDrafter(client, "test-model", components.templates, components.drafter, sleep=lambda _s: None)
    return dataclasses.replace(components, drafter=drafter)


@pytest.mark.slow
@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_an_approval_goes_through_while_the_worker_drafts_against_a_slow_llm(
    fresh_database: Database, fake_components: Components
) -> None:
    db = fresh_database
    with db.transaction() as session:  # one conversation with a draft to approve, and a batch waiting
        store = ensure_store(session, "EU", sender_address="service@eu.example")
        store_mail(session, store, relay_mail(message_id="<ready@x>", order_id="302-0000000-0000001"), source="t")
        process_pending(session, fake_components)
        agent = Agent(username="mia", display_name="Mia", role=Role.AGENT, languages=[], intent_groups=[])
        agent.stores = [store]
        session.add(agent)
        session.flush()
        principal = principal_for(agent)
        draft_id = session.scalars(select(Draft.id).where(Draft.status == DraftStatus.PENDING)).one()
        for n in range(BATCH):
            raw = relay_mail(message_id=f"<m{n}@x>", order_id=f"302-{n:07d}-1234567", name=f"Buyer{n}")
            store_mail(session, store, raw, source=f"m{n}")

    llm = SlowLlm()
    components = _llm_components(fake_components, llm)
    worker = threading.Thread(target=process_and_route, args=(db, components, REPO_ROOT / "knowledge"))
    worker.start()
    try:
        assert llm.first_request.wait(60), "the worker never reached the LLM"
        started = time.monotonic()
        with db.transaction() as session:
            item = actions.approve_draft(session, principal, draft_id)
        approval_seconds = time.monotonic() - started
    finally:
        llm.release.set()
        worker.join(120)
    assert not worker.is_alive()
    assert approval_seconds < 1.0, f"the approval waited {approval_seconds:.2f} s behind the worker"
    with db.read() as session:
        assert item.id is not None
        assert session.scalar(select(Message.id).where(Message.processed_at.is_(None))) is None
        drafted = session.scalars(select(Draft).where(Draft.drafter == "llm")).all()
        assert len(drafted) == BATCH  # the worker's batch was stored after the approval, nothing lost
        assert session.scalar(select(Conversation).where(Conversation.id == item.conversation_id)) is not None


@pytest.mark.parametrize("fresh_database", ["sqlite"], indirect=True)
def test_a_read_never_takes_the_sqlite_write_lock(fresh_database: Database) -> None:
    with fresh_database.read() as reader:
        reader.execute(text("SELECT count(*) FROM conversation")).scalar()
        started = time.monotonic()
        with fresh_database.transaction() as writer:
            ensure_store(writer, "EU", sender_address="service@eu.example")
        assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("fresh_database", ["sqlite"], indirect=True)
def test_a_write_transaction_takes_the_lock_up_front(fresh_database: Database) -> None:
    # Two writers never fail on a lock upgrade: a unit of work that may write holds the lock from its first
    # statement, so another writer waits (busy_timeout) instead of starting and failing half-way.
    path = fresh_database.engine.url.database
    assert path
    with fresh_database.transaction() as first:
        first.execute(text("SELECT 1"))
        other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()

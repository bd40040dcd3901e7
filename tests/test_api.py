"""The HTTP API over real HTTP: a uvicorn server on loopback, httpx as the client, every endpoint, tokens
scoped to stores (another store's conversation is 404), approval through the compliance gate and the outbox,
writes audited as the token, rate limiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from engine.compliance import check_reply
from engine.db import Database
from engine.db.models import Agent, ApiToken, AuditEvent, Conversation, Message, OutboxItem, Store
from engine.drafting.protocols import DraftResult
from engine.integrations.api import create_app
from engine.integrations.tokens import create_token, revoke_token
from engine.services.inbox import store_mail
from engine.services.pipeline import DraftOutcome, draft_job, store_draft
from engine.services.stores import ensure_store
from engine.settings import Settings
from tests.conftest import BACKENDS
from tests.helpers import relay_mail
from tests.servers import GOOD_REPLY, free_port

BLOCKED_REPLY = "Please leave us a positive review and write to me at seller.direct@gmail.com for a discount."


@dataclass
class World:
    client: httpx.Client
    db: Database
    tokens: dict[str, str]
    conversations: dict[str, list[int]]  # store -> conversation ids, oldest first
    drafts: dict[str, int]


def _conversation(session, store: Store, n: int, draft_text: str | None) -> tuple[int, int | None]:  # type: ignore[no-untyped-def]
    raw = relay_mail(
        message_id=f"<{store.id}-{n}@amazonses.example>", alias=f"buyer{n}x{store.id}@marketplace.amazon.de"
    )
    stored = store_mail(session, store, raw, source="test")
    message = session.get_one(Message, stored.message_row_id)
    conversation = session.get_one(Conversation, message.conversation_id)
    if draft_text is None:
        return conversation.id, None
    outcome = DraftOutcome(
        job=draft_job(conversation, message),
        language="en",
        intent="order_status",
        result=DraftResult(text=draft_text, action="reply", drafter="test"),
        verdict=check_reply(draft_text),
        order_context=None,
        order_context_status="",
    )
    draft = store_draft(session, conversation, outcome)
    session.flush()
    return conversation.id, draft.id


def _serve(db: Database, settings: Settings, *, per_minute: int = 1000) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(db, settings, requests_per_minute=per_minute), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def world(fresh_database: Database, settings: Settings) -> Iterator[World]:
    db = fresh_database
    tokens: dict[str, str] = {}
    conversations: dict[str, list[int]] = {"A": [], "B": []}
    drafts: dict[str, int] = {}
    with db.transaction() as session:
        stores = {
            key: ensure_store(session, f"Store {key}", sender_address=f"service@store-{key.lower()}.example")
            for key in "AB"
        }
        for key, store in stores.items():
            for n, text in enumerate((GOOD_REPLY, BLOCKED_REPLY, None)):
                conversation_id, draft_id = _conversation(session, store, n, text)
                conversations[key].append(conversation_id)
                if draft_id is not None:
                    drafts[f"{key}{n}"] = draft_id
        tokens["agentA"] = create_token(session, None, "erp-a", "agent", ["Store A"])[1]
        tokens["leadB"] = create_token(session, None, "crm-b", "lead", ["Store B"])[1]
        tokens["revoked"] = create_token(session, None, "old", "agent", ["Store A"])[1]
        revoke_token(session, None, "old")
    for url in _serve(db, settings):
        with httpx.Client(base_url=url, timeout=10) as client:
            yield World(client, db, tokens, conversations, drafts)


def _auth(world: World, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {world.tokens[who]}"}


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_tokens_are_required_and_revocable(world: World) -> None:
    assert world.client.get("/conversations").status_code == 401
    assert world.client.get("/conversations", headers={"authorization": "Bearer rdk_nonsense"}).status_code == 401
    revoked = world.client.get("/conversations", headers=_auth(world, "revoked"))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]
    with world.db.read() as session:
        hashes = set(session.scalars(select(ApiToken.token_hash)))
    assert not any(token in hashes for token in world.tokens.values())  # stored hashed only


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_listing_is_scoped_to_the_tokens_stores_and_paginates(world: World) -> None:
    seen: list[int] = []
    cursor: int | None = None
    while True:
        params = {"limit": "2", **({"cursor": str(cursor)} if cursor else {})}
        page = world.client.get("/conversations", params=params, headers=_auth(world, "agentA")).json()
        seen += [item["id"] for item in page["items"]]
        assert {item["store"] for item in page["items"]} <= {"Store A"}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(world.conversations["A"], reverse=True)  # newest first, each once
    filtered = world.client.get("/conversations", params={"status": "closed"}, headers=_auth(world, "agentA")).json()
    assert filtered["items"] == []
    bad = world.client.get("/conversations", params={"limit": "many"}, headers=_auth(world, "agentA"))
    assert bad.status_code == 400 and "whole number" in bad.json()["error"]


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_conversation_reads_whole_and_another_stores_is_404(world: World) -> None:
    mine, theirs = world.conversations["A"][0], world.conversations["B"][0]
    detail = world.client.get(f"/conversations/{mine}", headers=_auth(world, "agentA"))
    assert detail.status_code == 200
    body = detail.json()
    assert body["conversation"]["id"] == mine and body["conversation"]["store"] == "Store A"
    assert [m["direction"] for m in body["messages"]] == ["in"]
    assert [d["id"] for d in body["drafts"]] == [world.drafts["A0"]]
    assert body["sends"] == [] and body["notes"] == []
    for path in (f"/conversations/{theirs}", "/conversations/999999"):
        assert world.client.get(path, headers=_auth(world, "agentA")).status_code == 404
    for path, payload in (
        (f"/conversations/{theirs}/notes", {"text": "x"}),
        (f"/conversations/{theirs}/tags", {"tag": "x"}),
        (f"/conversations/{theirs}/status", {"status": "hold"}),
        (f"/drafts/{world.drafts['B0']}/approve", {}),
    ):
        assert world.client.post(path, json=payload, headers=_auth(world, "agentA")).status_code == 404


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_notes_tags_and_status_are_written_and_audited_as_the_token(world: World) -> None:
    conversation_id = world.conversations["B"][2]
    headers = _auth(world, "leadB")
    note = world.client.post(
        f"/conversations/{conversation_id}/notes", json={"text": "Refund booked in ERP"}, headers=headers
    )
    assert note.status_code == 200 and note.json()["text"] == "Refund booked in ERP"
    tags = world.client.post(f"/conversations/{conversation_id}/tags", json={"tag": "ERP Refund"}, headers=headers)
    assert tags.json() == {"tags": ["erp-refund"]}
    hold = world.client.post(f"/conversations/{conversation_id}/status", json={"status": "hold"}, headers=headers)
    assert hold.json() == {"id": conversation_id, "status": "hold"}
    bad = world.client.post(f"/conversations/{conversation_id}/status", json={"status": "gone"}, headers=headers)
    assert bad.status_code == 400 and "must be one of" in bad.json()["error"]
    empty = world.client.post(f"/conversations/{conversation_id}/notes", json={"text": " "}, headers=headers)
    assert empty.status_code == 400
    not_json = world.client.post(f"/conversations/{conversation_id}/notes", content=b"{", headers=headers)
    assert not_json.status_code == 400
    with world.db.read() as session:
        agent_id = session.scalar(select(Agent.id).where(Agent.username == "api:crm-b"))
        actions = list(
            session.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == agent_id).order_by(AuditEvent.id))
        )
        conversation = session.get_one(Conversation, conversation_id)
        assert conversation.claimed_by_id is None  # the API does not keep the claim acting takes
    assert actions == ["conversation.note", "conversation.tags", "conversation.hold"]


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_approval_goes_through_the_gate_and_the_outbox(world: World) -> None:
    headers = _auth(world, "agentA")
    approved = world.client.post(f"/drafts/{world.drafts['A0']}/approve", json={}, headers=headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    again = world.client.post(f"/drafts/{world.drafts['A0']}/approve", json={}, headers=headers)
    assert again.status_code == 409  # never queued twice
    blocked = world.client.post(f"/drafts/{world.drafts['A1']}/approve", json={}, headers=headers)
    assert blocked.status_code == 422 and "seller.direct@gmail.com" in blocked.json()["error"]
    edited = world.client.post(f"/drafts/{world.drafts['A1']}/approve", json={"text": GOOD_REPLY}, headers=headers)
    assert edited.status_code == 200
    with world.db.read() as session:
        items = list(session.scalars(select(OutboxItem).order_by(OutboxItem.id)))
        assert [(i.draft_id, i.body) for i in items] == [
            (world.drafts["A0"], GOOD_REPLY),
            (world.drafts["A1"], GOOD_REPLY),
        ]


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_queue_figures_and_docs(world: World) -> None:
    figures = world.client.get("/queue", headers=_auth(world, "agentA")).json()
    assert figures["awaiting_reply"] == 3 and figures["by_status"] == {"open": 3}
    assert figures["overdue"] == 3  # the relay mails are from November 2026's past
    assert world.client.get("/openapi.json").json()["paths"]["/drafts/{id}/approve"]["post"]["summary"]
    assert "/conversations/{id}/notes" in world.client.get("/docs").text


@pytest.mark.parametrize("fresh_database", ["sqlite"], indirect=True)
def test_requests_beyond_the_rate_limit_get_429(fresh_database: Database, settings: Settings) -> None:
    with fresh_database.transaction() as session:
        ensure_store(session, "Store A")
        token = create_token(session, None, "busy", "agent", ["Store A"])[1]
    for url in _serve(fresh_database, settings, per_minute=5):
        with httpx.Client(base_url=url) as client:
            codes = [client.get("/queue", headers={"authorization": f"Bearer {token}"}).status_code for _ in range(7)]
            limited = client.get("/queue", headers={"authorization": f"Bearer {token}"})
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    assert int(limited.headers["retry-after"]) >= 1

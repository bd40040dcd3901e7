"""The full export: every conversation with its messages, drafts, decisions, sends and notes, read back from
the JSON Lines file `replydesk export` writes (SQLite and PostgreSQL), filtered by store and date, and
streamed in flat memory however many conversations there are."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from engine.cli import main
from engine.db import Database
from engine.db.models import Agent, AuditEvent, Conversation, Draft, Message, Note, OutboxItem
from engine.integrations.export import EXPORT_SCHEMA, EXPORT_VERSION, export_lines
from engine.services import conversations
from engine.services.stores import ensure_store
from engine.settings import Settings
from engine.workflow.permissions import Principal, Role
from tests.conftest import BACKENDS
from tests.servers import GOOD_REPLY
from tests.test_api import _conversation


def _export(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str
) -> list[dict]:  # type: ignore[type-arg]
    monkeypatch.setenv("REPLYDESK_DATABASE_URL", db.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("REPLYDESK_DATA_DIR", str(settings.data_dir))
    out = tmp_path / "export.jsonl"
    assert main(["export", "--out", str(out), *args]) == 0
    assert not (tmp_path / "export.jsonl.partial").exists()
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_export_round_trips_every_row(
    fresh_database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db = fresh_database
    with db.transaction() as session:
        store_a = ensure_store(session, "Store A", sender_address="service@a.example")
        store_b = ensure_store(session, "Store B", sender_address="service@b.example")
        agent = Agent(username="lead", display_name="Lead", role=Role.LEAD, languages=[], intent_groups=[])
        agent.stores = [store_a, store_b]
        session.add(agent)
        session.flush()
        lead = Principal(agent.id, Role.LEAD, frozenset({store_a.id, store_b.id}))
        made = [_conversation(session, store, n, GOOD_REPLY) for store in (store_a, store_b) for n in range(2)]
        conversations.approve_draft(session, lead, made[0][1])  # type: ignore[arg-type]
        conversations.add_note(session, lead, made[1][0], "Called the carrier — 運送中")
        conversations.reject_draft(session, lead, made[1][1], "wrong tone")  # type: ignore[arg-type]

    records = _export(db, settings, monkeypatch, tmp_path)

    assert [r["conversation"]["id"] for r in records] == [conversation_id for conversation_id, _ in made]
    assert {(r["schema"], r["version"]) for r in records} == {(EXPORT_SCHEMA, EXPORT_VERSION)}
    with db.read() as session:
        for record in records:
            conversation_id = record["conversation"]["id"]
            conversation = session.get_one(Conversation, conversation_id)
            assert record["conversation"]["store"] == conversation.store.name
            assert record["conversation"]["thread_key"] == conversation.thread_key
            assert record["conversation"]["created_at"] == conversation.created_at.isoformat()
            messages = session.scalars(
                select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
            )
            assert [(m["id"], m["body"]) for m in record["messages"]] == [(m.id, m.body) for m in messages]
            drafts = session.scalars(select(Draft).where(Draft.conversation_id == conversation_id).order_by(Draft.id))
            assert [(d["id"], d["status"], d["text"], d["verdict"]) for d in record["drafts"]] == [
                (d.id, d.status, d.text, d.verdict) for d in drafts
            ]
            sends = session.scalars(select(OutboxItem).where(OutboxItem.conversation_id == conversation_id))
            assert [(s["id"], s["body"], s["state"]) for s in record["sends"]] == [
                (s.id, s.body, s.state) for s in sends
            ]
            notes = session.scalars(select(Note).where(Note.conversation_id == conversation_id))
            assert [n["text"] for n in record["notes"]] == [n.text for n in notes]
    decisions = {r["conversation"]["id"]: [d["action"] for d in r["decisions"]] for r in records}
    assert "draft.approve" in decisions[made[0][0]]
    assert {"conversation.note", "draft.reject"} <= set(decisions[made[1][0]])
    assert decisions[made[2][0]] == []
    with db.read() as session:  # every audit event about these conversations and drafts is in the export
        expected = session.scalars(select(AuditEvent.id).where(AuditEvent.entity.in_(("conversation", "draft"))))
        assert sorted(d["id"] for r in records for d in r["decisions"]) == sorted(expected)

    only_b = _export(db, settings, monkeypatch, tmp_path, "--store", "Store B")
    assert [r["conversation"]["store"] for r in only_b] == ["Store B", "Store B"]
    future = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert _export(db, settings, monkeypatch, tmp_path, "--since", future) == []
    assert main(["export", "--store", "Nowhere"]) == 2
    assert main(["export", "--since", "yesterday"]) == 2


def test_export_streams_in_flat_memory(fresh_database: Database) -> None:
    db = fresh_database
    body = "Where is my parcel? " * 100  # 2 KB a message
    total = 6000
    with db.transaction() as session:
        store_id = ensure_store(session, "Bulk").id
        now = datetime.now(UTC)
        session.execute(
            insert(Conversation),
            [
                {
                    "store_id": store_id,
                    "thread_key": f"t{i}",
                    "buyer_address": f"b{i}@x",
                    "subject": "s",
                    "status": "open",
                    "priority": 0,
                    "tags": [],
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(total)
            ],
        )
        ids = list(session.scalars(select(Conversation.id).order_by(Conversation.id)))
        session.execute(
            insert(Message),
            [
                {
                    "store_id": store_id,
                    "conversation_id": cid,
                    "direction": "in",
                    "kind": "buyer_message",
                    "dedupe_key": f"k{cid}",
                    "body": body,
                    "received_at": now,
                    "attachments": [],
                    "flags": [],
                    "subject": "s",
                    "suspicious": False,
                    "intent_needs_review": False,
                    "created_at": now,
                }
                for cid in ids
            ],
        )

    def peak(limit: int) -> tuple[int, int]:
        written = 0
        with db.read() as session:
            tracemalloc.start()
            for n, line in enumerate(export_lines(session, store="Bulk"), 1):
                written += len(line)
                if n == limit:
                    break
            _current, high = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return high, written

    small_peak, small_written = peak(1000)
    big_peak, big_written = peak(total)
    assert big_written > 5 * small_written  # six times the output ...
    assert big_peak < 1.5 * small_peak  # ... in about the same memory
    assert big_peak < 8 * 1024 * 1024

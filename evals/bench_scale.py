"""Database latency at scale: the queue, statistics and conversation pages' queries over 100,000 conversations
(300,000 messages) in SQLite and PostgreSQL.

    python -m evals.bench_scale [conversations]      # prints a Markdown table

The data is synthetic but shaped like a busy seller's: 3 stores over 15 marketplaces, 13 intents and
languages, mostly closed or waiting conversations with a few thousand open ones whose Amazon deadlines are
spread around now (some overdue), drafts for most conversations in every outcome, outbox items for part of
the sent replies. It is bulk-inserted (Core executemany, in chunks) into a throwaway database per backend.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, insert, select, text

from engine.db import Database
from engine.db.models import (
    Agent,
    AuditEvent,
    Conversation,
    ConversationStatus,
    Draft,
    DraftStatus,
    KnowledgeItem,
    Message,
    OutboxItem,
    OutboxState,
    Store,
    agent_store,
)
from engine.services import stats
from engine.services.queue import QueueFilters, list_queue
from engine.taxonomy import INTENTS, LANGUAGES, MARKETPLACES
from engine.ui.snapshots import conversation_snapshot
from engine.workflow.permissions import Principal, Role
from evals.databases import throwaway_database

SEED = 11
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HISTORY_DAYS = 90
CHUNK = 2_000  # conversations per executemany round
KNOWLEDGE_ITEMS = 300
AGENTS_PER_STORE = 4
STORE_WEIGHTS = (0.5, 0.3, 0.2)
# Share of conversations per status; the active ones (open, hold) are what the queue shows.
STATUS_WEIGHTS = {
    ConversationStatus.CLOSED: 0.62,
    ConversationStatus.WAITING: 0.28,
    ConversationStatus.NO_RESPONSE_NEEDED: 0.06,
    ConversationStatus.OPEN: 0.035,
    ConversationStatus.HOLD: 0.005,
}
# Outcome of the first draft of a conversation that is no longer open.
DECIDED_WEIGHTS = {
    DraftStatus.SENT: 0.62,
    DraftStatus.APPROVED: 0.08,
    DraftStatus.EDITED: 0.08,
    DraftStatus.REJECTED: 0.12,
    DraftStatus.SUPERSEDED: 0.10,
}
REJECT_REASONS = ("wrong tone", "wrong facts", "Wrong intent", "too long", "missing tracking number")
DRAFTERS = ("retrieval", "template", "llm")
REPEATS = {"queue": 15, "statistics": 3, "conversation": 40}


@dataclass
class _Principals:
    admin: Principal
    one_store_agent: Principal
    counts: dict[str, int] = field(default_factory=dict)


def _weighted(rng: random.Random, weights: dict[Any, float]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _store_marketplaces() -> list[list[str]]:
    """The 15 marketplaces split over the 3 stores (Americas-ish, Europe-ish, the rest)."""
    codes = list(MARKETPLACES)
    return [codes[0:4], codes[4:11], codes[11:]]


def _seed_reference_rows(connection: Connection, rng: random.Random) -> _Principals:
    markets = _store_marketplaces()
    connection.execute(
        insert(Store),
        [{"id": i + 1, "name": f"Bench store {i + 1}", "marketplaces": markets[i], "allow_list": []} for i in range(3)],
    )
    agents = [{"id": 1, "username": "admin", "display_name": "Admin", "role": Role.ADMIN}]
    links = []
    for store in range(1, 4):
        for n in range(AGENTS_PER_STORE):
            agent_id = len(agents) + 1
            agents.append(
                {
                    "id": agent_id,
                    "username": f"agent{agent_id}",
                    "display_name": f"Agent {agent_id}",
                    "role": Role.AGENT,
                }
            )
            links.append({"agent_id": agent_id, "store_id": store})
            if n == 0 and store < 3:  # a few agents work on two stores
                links.append({"agent_id": agent_id, "store_id": store + 1})
    connection.execute(insert(Agent), agents)
    connection.execute(insert(agent_store), links)
    connection.execute(
        insert(KnowledgeItem),
        [
            {
                "id": k,
                "question": f"Past question {k} about {INTENTS[k % len(INTENTS)]}?",
                "answer": f"Past answer {k}.",
                "intent": INTENTS[k % len(INTENTS)],
                "language": LANGUAGES[k % len(LANGUAGES)],
            }
            for k in range(1, KNOWLEDGE_ITEMS + 1)
        ],
    )
    # The one-store agent: the last agent of store 3 works on store 3 only.
    one_store = len(agents)
    return _Principals(
        admin=Principal(agent_id=1, role=Role.ADMIN, store_ids=frozenset({1, 2, 3})),
        one_store_agent=Principal(agent_id=one_store, role=Role.AGENT, store_ids=frozenset({3})),
    )


def _agents_of(store_id: int) -> list[int]:
    first = 2 + (store_id - 1) * AGENTS_PER_STORE
    return list(range(first, first + AGENTS_PER_STORE))


@dataclass
class _Chunk:
    conversations: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    drafts: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)


def _conversation_rows(rng: random.Random, first_id: int, count: int, per_conversation: int) -> _Chunk:
    """Rows for conversations `first_id .. first_id + count - 1`; message and draft ids follow from them."""
    markets = _store_marketplaces()
    chunk = _Chunk()
    for cid in range(first_id, first_id + count):
        store_id = rng.choices((1, 2, 3), weights=STORE_WEIGHTS)[0]
        marketplace = rng.choice(markets[store_id - 1])
        default_language = MARKETPLACES[marketplace].default_language
        language = default_language if rng.random() < 0.8 else rng.choice(LANGUAGES)
        intent = rng.choice(INTENTS)
        status = _weighted(rng, STATUS_WEIGHTS)
        active = status in (ConversationStatus.OPEN, ConversationStatus.HOLD)
        # The newest message: within the last 36 h for active conversations (some past their deadline).
        last = NOW - (timedelta(hours=rng.uniform(0, 36)) if active else timedelta(days=rng.uniform(0, HISTORY_DAYS)))
        times = [last]
        for _ in range(per_conversation - 1):
            times.append(times[-1] - timedelta(minutes=rng.uniform(30, 48 * 60)))
        times.reverse()
        # Buyer first, then alternate; an active conversation ends on the buyer's message.
        directions = ["in" if (per_conversation - 1 - i) % 2 == 0 else "out" for i in range(per_conversation)]
        if not active:
            directions = ["in" if i % 2 == 0 else "out" for i in range(per_conversation)]
        first_message = (cid - 1) * per_conversation + 1
        assignee = rng.choice(_agents_of(store_id)) if rng.random() < 0.6 else None
        awaiting = times[-1] if active else None
        chunk.conversations.append(
            {
                "id": cid,
                "store_id": store_id,
                "thread_key": f"bench-{cid}",
                "marketplace": marketplace,
                "buyer_address": f"buyer{cid}@marketplace.amazon.de",
                "buyer_name": f"Buyer {cid}",
                "order_id": f"{cid % 1000:03d}-{cid:07d}-{rng.randrange(10**7):07d}",
                "subject": f"Question about order {cid} ({intent})",
                "status": status,
                "language": language,
                "intent": intent,
                "intent_score": round(rng.uniform(0.4, 1.0), 3),
                "priority": 1 if rng.random() < 0.1 else 0,
                "awaiting_since": awaiting,
                "amazon_deadline": awaiting + timedelta(hours=24) if awaiting else None,
                "last_message_at": times[-1],
                "assignee_id": assignee,
                "tags": [],
                "created_at": times[0],
                "updated_at": times[-1],
            }
        )
        for offset, (direction, at) in enumerate(zip(directions, times, strict=True)):
            mid = first_message + offset
            follow_up_intent = rng.choice(("no_response_needed", intent, "complaint_feedback", rng.choice(INTENTS)))
            chunk.messages.append(
                {
                    "id": mid,
                    "store_id": store_id,
                    "conversation_id": cid,
                    "direction": direction,
                    "kind": "buyer_message" if direction == "in" else "reply",
                    "dedupe_key": f"bench-{mid}",
                    "message_id": f"<m{mid}@bench.example>",
                    "subject": f"Question about order {cid}",
                    "from_address": f"buyer{cid}@marketplace.amazon.de" if direction == "in" else "shop@example.com",
                    "to_address": "shop@example.com" if direction == "in" else f"buyer{cid}@marketplace.amazon.de",
                    "body": f"Message {mid}: " + "Where is my parcel, it has not arrived yet. " * rng.randint(1, 6),
                    "received_at": at,
                    "attachments": [],
                    "language": language if direction == "in" else None,
                    "language_score": 0.9 if direction == "in" else None,
                    "intent": (intent if offset == 0 else follow_up_intent) if direction == "in" else None,
                    "intent_score": 0.8 if direction == "in" else None,
                    "processed_at": at,
                    "created_at": at,
                }
            )
        if rng.random() < 0.12:  # a few conversations never got a draft (unparsed, manual replies)
            continue
        answered = times[1] if len(times) > 1 and directions[1] == "out" else None
        _draft_rows(rng, chunk, cid, store_id, first_message, intent, language, active, times, answered)
        if status == ConversationStatus.NO_RESPONSE_NEEDED:
            chunk.audit.append(
                {
                    "at": times[-1] + timedelta(minutes=5),
                    "actor_id": assignee,
                    "action": "conversation.no_response_needed",
                    "entity": "conversation",
                    "entity_id": cid,
                }
            )
    return chunk


def _draft_rows(
    rng: random.Random,
    chunk: _Chunk,
    cid: int,
    store_id: int,
    first_message: int,
    intent: str,
    language: str,
    active: bool,
    times: list[datetime],
    answered: datetime | None,
) -> None:
    draft_id = cid  # at most one draft per conversation, so the ids line up
    text_ = f"Dear buyer, thank you for your message about order {cid}. " * rng.randint(1, 3)
    status = DraftStatus.PENDING if active else _weighted(rng, DECIDED_WEIGHTS)
    decided = status not in (DraftStatus.PENDING, DraftStatus.SUPERSEDED)
    final_text = {
        DraftStatus.SENT: text_ if rng.random() < 0.7 else text_ + "Kind regards",
        DraftStatus.APPROVED: text_,
        DraftStatus.EDITED: text_.replace("Dear buyer", "Hello"),
    }.get(status)
    decided_at = (answered or times[-1]) - timedelta(minutes=rng.uniform(1, 20)) if decided else None
    sources = [{"kind": "knowledge", "id": rng.randint(1, KNOWLEDGE_ITEMS), "score": 0.8} for _ in range(2)]
    chunk.drafts.append(
        {
            "id": draft_id,
            "conversation_id": cid,
            "message_id": first_message if not active else first_message + len(times) - 1,
            "status": status,
            "action": "reply",
            "text": text_,
            "final_text": final_text,
            "language": language,
            "intent": intent,
            "drafter": rng.choice(DRAFTERS),
            "template_id": f"{intent}.{language}" if rng.random() < 0.5 else None,
            "sources": sources,
            "allowed": rng.random() > 0.05,
            "verdict": {},
            "reject_reason": rng.choice(REJECT_REASONS) if status == DraftStatus.REJECTED else None,
            "decided_by_id": rng.choice(_agents_of(store_id)) if decided else None,
            "decided_at": decided_at,
            "created_at": times[0] + timedelta(minutes=1),
        }
    )
    if status == DraftStatus.SENT and answered is not None and rng.random() < 0.5:
        state = OutboxState.SENT if rng.random() < 0.97 else OutboxState.FAILED
        chunk.outbox.append(
            {
                "id": draft_id,
                "draft_id": draft_id,
                "conversation_id": cid,
                "store_id": store_id,
                "state": state,
                "message_id": f"<o{draft_id}@bench.example>",
                "from_address": "shop@example.com",
                "to_address": f"buyer{cid}@marketplace.amazon.de",
                "subject": f"Re: Question about order {cid}",
                "body": final_text or text_,
                "references": [],
                "attempts": 1,
                "sent_at": answered if state == OutboxState.SENT else None,
                "created_at": answered,
                "updated_at": answered,
            }
        )


def load(db: Database, conversations: int, per_conversation: int, seed: int = SEED) -> _Principals:
    """Bulk-insert the synthetic data; returns who to measure as, with the row counts."""
    rng = random.Random(seed)
    with db.engine.begin() as connection:
        principals = _seed_reference_rows(connection, rng)
    counts = dict.fromkeys(("conversation", "message", "draft", "outbox_item", "audit_event"), 0)
    for first in range(1, conversations + 1, CHUNK):
        chunk = _conversation_rows(rng, first, min(CHUNK, conversations + 1 - first), per_conversation)
        with db.engine.begin() as connection:
            for table, rows in (
                (Conversation, chunk.conversations),
                (Message, chunk.messages),
                (Draft, chunk.drafts),
                (OutboxItem, chunk.outbox),
                (AuditEvent, chunk.audit),
            ):
                if rows:
                    connection.execute(insert(table), rows)
                    counts[str(table.__tablename__)] += len(rows)
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for name in ("store", "agent", "knowledge_item", "conversation", "message", "draft", "outbox_item"):
                # Explicit ids were inserted: move the sequences past them so later inserts work.
                connection.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
                )
            # VACUUM as autovacuum would have by now: it also sets the visibility map for index-only scans.
            connection.execute(text("VACUUM ANALYZE"))
    else:
        with db.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    principals.counts = counts
    return principals


def _timings(repeats: int, action: Callable[[int], Any]) -> dict[str, float]:
    action(-1)  # warm-up: statement compilation and a cold cache are not what a page sees all day
    samples = []
    for i in range(repeats):
        started = time.perf_counter()
        action(i)
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(samples), "p95_ms": float(np.percentile(samples, 95)), "runs": repeats}


def statistics_page(session: Any, principal: Principal, since: datetime, until: datetime) -> None:
    """What the statistics page loads (`app_pages/statistics.py`)."""
    window: dict[str, Any] = {"since": since, "until": until, "now": until}
    stats.volume(session, principal, **window)
    stats.response_times(session, principal, **window)
    stats.agents(session, principal, **window)
    stats.draft_quality(session, principal, **window)
    stats.satisfaction(session, principal, **window)
    stats.recurring_questions(session, principal, **window)


def measure(db: Database, principals: _Principals, conversations: int, repeats: dict[str, int]) -> dict[str, Any]:
    rng = random.Random(SEED + 1)
    results: dict[str, Any] = {}
    queue_cases = {
        "first page": (QueueFilters(), 1),
        "filtered page": (QueueFilters(marketplaces=("DE", "US", "JP"), languages=("de", "en", "ja")), 1),
        "page 20": (QueueFilters(), 20),
    }
    for who, principal in (("admin", principals.admin), ("one-store agent", principals.one_store_agent)):
        for case, (filters, page) in queue_cases.items():

            def queue(
                _: int, principal: Principal = principal, filters: QueueFilters = filters, page: int = page
            ) -> None:
                with db.transaction() as session:
                    list_queue(session, principal, filters, page=page, page_size=50, now=NOW)

            results[f"queue {case}, {who}"] = _timings(repeats["queue"], queue)

    def statistics_run(_: int) -> None:
        with db.transaction() as session:
            statistics_page(session, principals.admin, NOW - timedelta(days=30), NOW)

    results["statistics page, 30 days, admin"] = _timings(repeats["statistics"], statistics_run)
    ids = [rng.randint(1, conversations) for _ in range(repeats["conversation"] + 1)]

    def snapshot(i: int) -> None:
        with db.transaction() as session:
            conversation_snapshot(session, principals.admin, ids[i])

    results["conversation page"] = _timings(repeats["conversation"], snapshot)
    return results


def bench_scale(
    conversations: int = 100_000,
    messages_per_conversation: int = 3,
    backends: Sequence[str] = ("sqlite", "postgresql"),
    repeats: dict[str, int] | None = None,
) -> dict[str, Any]:
    """p50/p95 milliseconds of the queue, statistics and conversation pages' queries, per backend."""
    if conversations < 1 or messages_per_conversation < 1:
        raise ValueError("bench_scale needs at least one conversation with at least one message")
    results: dict[str, Any] = {"conversations": conversations, "messages_per_conversation": messages_per_conversation}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for backend in backends:
            with throwaway_database(backend, Path(tmp)) as db:
                started = time.perf_counter()
                principals = load(db, conversations, messages_per_conversation)
                load_s = time.perf_counter() - started
                with db.engine.connect() as connection:
                    stored = {
                        name: int(connection.scalar(select(func.count()).select_from(table)) or 0)
                        for name, table in (
                            ("conversation", Conversation),
                            ("message", Message),
                            ("draft", Draft),
                            ("outbox_item", OutboxItem),
                            ("audit_event", AuditEvent),
                        )
                    }
                results[backend] = {
                    "load_s": load_s,
                    "generated": principals.counts,
                    "stored": stored,
                    "measures": measure(db, principals, conversations, repeats or REPEATS),
                }
    return results


TARGETS_MS = {"queue": 200.0, "statistics": 2000.0, "conversation": 300.0}


def target_for(measure_name: str) -> float:
    return next(limit for prefix, limit in TARGETS_MS.items() if measure_name.startswith(prefix))


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, result, notes) rows for `evals.bench`'s Markdown table."""
    rows = []
    size = f"{results['conversations']:,} conversations"
    for backend in ("sqlite", "postgresql"):
        if backend not in results:
            continue
        data = results[backend]
        rows.append((f"Load {size} ({backend})", f"{data['load_s']:.1f} s", f"{data['stored']['message']:,} messages"))
        for name, timing in data["measures"].items():
            limit = target_for(name)
            verdict = "ok" if timing["p95_ms"] <= limit else "ABOVE TARGET"
            rows.append(
                (
                    f"{name} ({backend})",
                    f"{timing['p95_ms']:.0f} ms p95",
                    f"p50 {timing['p50_ms']:.0f} ms, {timing['runs']} runs; target {limit:.0f} ms: {verdict}",
                )
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    conversations = int(args[0]) if args else 100_000
    from evals.bench import markdown_table

    print(markdown_table(table_rows(bench_scale(conversations))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

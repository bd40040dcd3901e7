"""The scale benchmark's data: 100,000 conversations (300,000 messages) shaped like a busy seller's, bulk-inserted
into a database for `evals.bench_scale` to measure.

3 stores over 15 marketplaces, 13 intents and languages, mostly closed or waiting conversations with a few
thousand open ones whose Amazon deadlines are spread around now (some overdue), drafts for most conversations
in every outcome, outbox items for part of the sent replies. What the app records as it goes (a buyer
message's answer and clearing, a sent draft's edit distance: `engine.services.stats_record`) is filled in as
the app would have. Rows go in with Core executemany, in chunks.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, text

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
from engine.services.stats_record import first_at_or_after, sent_edit_distance
from engine.taxonomy import INTENTS, LANGUAGES, MARKETPLACES
from engine.workflow.permissions import Principal, Role

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


@dataclass
class Principals:
    admin: Principal
    one_store_agent: Principal
    counts: dict[str, int] = field(default_factory=dict)


def _weighted(rng: random.Random, weights: dict[Any, float]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _store_marketplaces() -> list[list[str]]:
    """The 15 marketplaces split over the 3 stores (Americas-ish, Europe-ish, the rest)."""
    codes = list(MARKETPLACES)
    return [codes[0:4], codes[4:11], codes[11:]]


def _seed_reference_rows(connection: Connection, rng: random.Random) -> Principals:
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
    return Principals(
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
    _record_answers(chunk)
    return chunk


def _record_answers(chunk: _Chunk) -> None:
    """Each message's `answered_at` and `cleared_at`, as the app records them when a reply goes out or a
    conversation is cleared (`engine.services.stats_record`); a chunk holds whole conversations."""
    replies: defaultdict[int, list[datetime]] = defaultdict(list)
    clearings: defaultdict[int, list[datetime]] = defaultdict(list)
    for message in chunk.messages:
        if message["direction"] == "out":
            replies[message["conversation_id"]].append(message["received_at"])
    for item in chunk.outbox:
        if item["state"] == OutboxState.SENT:
            replies[item["conversation_id"]].append(item["sent_at"])
    for event in chunk.audit:
        clearings[event["entity_id"]].append(event["at"])
    for times in (*replies.values(), *clearings.values()):
        times.sort()
    for message in chunk.messages:
        buyer = message["direction"] == "in"
        conversation_id, received = message["conversation_id"], message["received_at"]
        message["answered_at"] = first_at_or_after(received, replies[conversation_id]) if buyer else None
        message["cleared_at"] = first_at_or_after(received, clearings[conversation_id]) if buyer else None


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
            # Recorded when the reply is queued (`engine.send.outbox`).
            "edit_distance": None if final_text is None else sent_edit_distance(text_, final_text),
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


def load(db: Database, conversations: int, per_conversation: int, seed: int = SEED) -> Principals:
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

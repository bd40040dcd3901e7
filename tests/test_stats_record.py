"""What the statistics record as it happens (`engine.services.stats_record`): a buyer message's answer and
clearing, a sent draft's edit distance — set by the recorder, by the app's paths that call it (approve, send,
"no response needed", a late-synced buyer mail) and by migration 0005 for rows that existed before it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.db import Database
from engine.db.models import (
    Agent,
    AuditEvent,
    Conversation,
    Draft,
    DraftStatus,
    Mailbox,
    Message,
    OutboxItem,
    OutboxState,
    Store,
)
from engine.db.session import alembic_config
from engine.send.smtp import FakeSender, SmtpConfig
from engine.send.worker import send_pending
from engine.services import conversations as actions
from engine.services.agents import principal_for
from engine.services.inbox import store_mail
from engine.services.stats_record import first_at_or_after, record_answers, sent_edit_distance
from engine.services.stores import ensure_store
from engine.settings import Settings
from engine.sync import FakeMailServer, FakeSource, ImapConfig, MessageSource
from engine.workflow.permissions import Principal, Role
from tests.conftest import BACKENDS
from tests.helpers import relay_mail
from tests.servers import THREAD_MAIL, make_mailbox, queue_reply, with_message_id

NRN = "conversation.no_response_needed"


def at(hour: int, minute: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


# --- the pure pieces ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "times", "expected"),
    [
        (at(10), [at(9), at(11), at(12)], at(11)),
        (at(11), [at(9), at(11), at(12)], at(11)),  # a reply at the same instant counts
        (at(13), [at(9), at(11), at(12)], None),
        (at(10), [], None),
    ],
)
def test_first_at_or_after(moment: datetime, times: list[datetime], expected: datetime | None) -> None:
    assert first_at_or_after(moment, times) == expected


@pytest.mark.parametrize(
    ("drafted", "sent", "expected"),
    [
        ("Hello, it ships today.", "Hello, it ships today.", 0.0),
        ("  Hello, it ships today.\n", "Hello, it ships today.", 0.0),  # outer whitespace does not count
        ("abcd", "abcf", 0.25),
        ("abcd", "wxyz", 1.0),
        ("", "", 0.0),
    ],
)
def test_sent_edit_distance(drafted: str, sent: str, expected: float) -> None:
    assert sent_edit_distance(drafted, sent) == pytest.approx(expected)


# --- the recorder on hand-built rows -----------------------------------------------------------------------


class Thread:
    """A store with one conversation whose events are added directly, and a second one next to it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.store = self.add(Store(name="Store R", marketplaces=["DE"], allow_list=[]))
        self.conversation = self.new_conversation("r1")
        self.other = self.new_conversation("r2")

    def add(self, row: Any) -> Any:
        self.session.add(row)
        self.session.flush()
        return row

    def new_conversation(self, key: str) -> Conversation:
        return self.add(
            Conversation(store_id=self.store.id, thread_key=key, buyer_address=f"{key}@x.example", subject=key)
        )

    def message(self, when: datetime, *, direction: str = "in", conversation: Conversation | None = None) -> Message:
        conversation = conversation or self.conversation
        return self.add(
            Message(
                store_id=self.store.id,
                conversation_id=conversation.id,
                direction=direction,
                kind="buyer_message" if direction == "in" else "reply",
                dedupe_key=f"{conversation.id}-{direction}-{when.isoformat()}",
                received_at=when,
            )
        )

    def outbox(self, state: OutboxState, sent: datetime | None) -> OutboxItem:
        draft = self.add(Draft(conversation_id=self.conversation.id, drafter="test", text="x", sources=[], verdict={}))
        return self.add(
            OutboxItem(
                draft_id=draft.id,
                conversation_id=self.conversation.id,
                store_id=self.store.id,
                state=state,
                message_id=f"<d{draft.id}@test>",
                from_address="s@x.example",
                to_address="b@x.example",
                subject="Re",
                body="x",
                sent_at=sent,
            )
        )

    def cleared(self, when: datetime) -> None:
        self.add(AuditEvent(at=when, action=NRN, entity="conversation", entity_id=self.conversation.id))


def test_each_buyer_message_gets_its_first_reply_and_clearing(session: Session) -> None:
    thread = Thread(session)
    first, second = thread.message(at(10)), thread.message(at(10, 30))
    thread.message(at(10, 45), direction="out", conversation=thread.other)  # another thread's reply
    thread.message(at(11), direction="out")
    third = thread.message(at(12))
    thread.outbox(OutboxState.FAILED, None)  # never went out
    thread.outbox(OutboxState.SENT, at(13))
    same_instant = thread.message(at(13))
    unanswered = thread.message(at(13, 30))
    thread.cleared(at(14))

    record_answers(session, [thread.conversation.id, None])

    answers = [(m.answered_at, m.cleared_at) for m in (first, second, third, same_instant, unanswered)]
    assert answers == [
        (at(11), at(14)),
        (at(11), at(14)),
        (at(13), at(14)),
        (at(13), at(14)),
        (None, at(14)),
    ]
    session.flush()
    record_answers(session, [thread.conversation.id])  # idempotent: nothing left to change
    assert not session.dirty


def test_a_reply_recorded_out_of_order_still_gives_the_earliest_answer(session: Session) -> None:
    thread = Thread(session)
    buyer = thread.message(at(10))
    thread.outbox(OutboxState.SENT, at(12))
    record_answers(session, [thread.conversation.id])
    thread.message(at(11), direction="out")  # stored after, though it went out earlier
    record_answers(session, [thread.conversation.id])
    assert buyer.answered_at == at(11)


# --- the app's paths ---------------------------------------------------------------------------------------


DRAFTED = "Hello Jonas, your parcel left our warehouse today."


def _desk(session: Session) -> tuple[Conversation, Draft, Principal]:
    """A buyer mail with a pending draft (written directly: the drafter is not what is tested) and an agent."""
    store = ensure_store(session, "EU", sender_address="service@eu.example")
    stored = store_mail(session, store, relay_mail(), source="test")
    buyer = session.get_one(Message, stored.message_row_id)
    assert buyer.conversation_id is not None
    draft = Draft(
        conversation_id=buyer.conversation_id,
        message_id=buyer.id,
        text=DRAFTED,
        language="en",
        drafter="test",
        sources=[],
        verdict={},
    )
    agent = Agent(username="mia", display_name="Mia", role=Role.AGENT, languages=[], intent_groups=[])
    agent.stores = [store]
    session.add_all([draft, agent])
    session.flush()
    return session.get_one(Conversation, buyer.conversation_id), draft, principal_for(agent)


@pytest.mark.parametrize(
    "final", [None, "  " + DRAFTED + "\n", "Hello Jonas, your parcel is on its way and will arrive soon."]
)
def test_approving_records_the_edit_distance_of_the_sent_text(session: Session, final: str | None) -> None:
    _, draft, mia = _desk(session)
    actions.approve_draft(session, mia, draft.id, final_text=final)
    expected = sent_edit_distance(DRAFTED, final or DRAFTED)
    assert draft.edit_distance == pytest.approx(expected)
    assert (expected == 0) is (final is None or final.strip() == DRAFTED)


def test_no_response_needed_clears_the_waiting_buyer_message(session: Session) -> None:
    conversation, _, mia = _desk(session)
    actions.mark_no_response_needed(session, mia, conversation.id)
    buyer = session.scalars(select(Message).where(Message.conversation_id == conversation.id)).one()
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == NRN)).one()
    assert (buyer.answered_at, buyer.cleared_at) == (None, event.at)


SENT_AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class _NoSentFolder:
    def __call__(self, config: ImapConfig) -> MessageSource:
        return FakeSource(FakeMailServer())


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_sending_answers_the_buyer_messages_and_a_late_synced_one_too(
    fresh_database: Database, settings: Settings
) -> None:
    mailbox_id = make_mailbox(fresh_database, settings)
    with fresh_database.transaction() as session:
        session.get_one(Mailbox, mailbox_id).smtp_host = "smtp.fake"
    item_id = queue_reply(fresh_database, mailbox_id)
    sender = FakeSender()

    def sender_factory(config: SmtpConfig) -> FakeSender:
        return sender

    counts = send_pending(
        fresh_database,
        settings,
        sender_factory=sender_factory,
        sent_folder_checker=_NoSentFolder(),
        now=lambda: SENT_AT,
    )
    assert counts.sent == 1
    # A buyer mail written before the reply went out but synced after it: that reply answered it.
    earlier = THREAD_MAIL.read_bytes().replace(b"Date: Mon, 16 Nov 2026 07:58:14", b"Date: Thu, 19 Nov 2026 09:00:00")
    with fresh_database.transaction() as session:
        conversation_id = session.get_one(OutboxItem, item_id).conversation_id
        store = session.get_one(Conversation, conversation_id).store
        store_mail(session, store, with_message_id(earlier, "buyer.meanwhile@amazonses.com"), source="test")
    with fresh_database.transaction() as session:
        buyers = session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.direction == "in")
            .order_by(Message.received_at)
        ).all()
        assert [m.received_at.date().isoformat() for m in buyers] == ["2026-11-16", "2026-11-19"]
        assert [m.answered_at for m in buyers] == [SENT_AT, SENT_AT]


# --- migration 0005 fills in the rows that existed before it ---------------------------------------------


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_migration_backfills_answers_and_edit_distances(fresh_database: Database) -> None:
    config = alembic_config(fresh_database.engine)
    command.downgrade(config, "0004")
    with fresh_database.engine.begin() as connection:
        connection.execute(insert(Store), [{"id": 1, "name": "Old store", "marketplaces": [], "allow_list": []}])
        connection.execute(
            insert(Conversation),
            [{"id": c, "store_id": 1, "thread_key": f"old-{c}", "buyer_address": "b@x.example"} for c in (1, 2)],
        )
        messages = [(1, 1, "in", at(9)), (2, 1, "out", at(10)), (3, 1, "in", at(11)), (4, 2, "in", at(9))]
        connection.execute(
            insert(Message),
            [
                {
                    "id": mid,
                    "store_id": 1,
                    "conversation_id": cid,
                    "direction": direction,
                    "kind": "buyer_message" if direction == "in" else "reply",
                    "dedupe_key": f"old-{mid}",
                    "received_at": when,
                }
                for mid, cid, direction, when in messages
            ],
        )
        drafts: list[tuple[int, str, str | None, DraftStatus]] = [
            (1, "Hallo", "Hallo", DraftStatus.SENT),
            (2, "abcd", " abcf ", DraftStatus.EDITED),
            (3, "No.", None, DraftStatus.REJECTED),
        ]
        connection.execute(
            insert(Draft),
            [
                {"id": did, "conversation_id": 1, "drafter": "old", "text": text, "final_text": final, "status": status}
                for did, text, final, status in drafts
            ],
        )
        connection.execute(
            insert(OutboxItem),
            [
                {
                    "draft_id": 2,
                    "conversation_id": 1,
                    "store_id": 1,
                    "state": OutboxState.SENT,
                    "message_id": "<old-2@test>",
                    "from_address": "s@x.example",
                    "to_address": "b@x.example",
                    "subject": "Re",
                    "body": "abcf",
                    "sent_at": at(12),
                }
            ],
        )
        connection.execute(
            insert(AuditEvent), [{"at": at(9, 30), "action": NRN, "entity": "conversation", "entity_id": 2}]
        )
    command.upgrade(config, "head")
    with fresh_database.transaction() as session:
        answers = {m.id: (m.answered_at, m.cleared_at) for m in session.scalars(select(Message))}
        assert answers == {1: (at(10), None), 2: (None, None), 3: (at(12), None), 4: (None, at(9, 30))}
        distances = {d.id: d.edit_distance for d in session.scalars(select(Draft))}
        assert distances == {1: 0.0, 2: pytest.approx(0.25), 3: None}


def test_unknown_conversations_and_empty_input_are_harmless(session: Session) -> None:
    record_answers(session, [])
    record_answers(session, [None, 10**9])
    assert not session.dirty and not session.new

"""Storing mail: exactly once, raw bytes kept, threads rebuilt, Amazon's clock started, notices linked."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from unittest.mock import ANY

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from engine.db import Database
from engine.db.models import (
    Conversation,
    ConversationStatus,
    Draft,
    Message,
    OutboxItem,
    OutboxState,
    RawMail,
    Store,
)
from engine.mail import parse_mail
from engine.services import inbox
from engine.services.inbox import IncomingMail, StoredMail, store_mail, store_mails
from engine.services.stores import ensure_store
from tests.helpers import relay_mail
from tests.servers import DEMO_DIR, with_message_id

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _store(session: Session, name: str = "Northwind EU") -> Store:
    return ensure_store(session, name, region="eu", marketplaces=["DE"], sender_address="service@northwind.example")


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_buyer_message_opens_a_conversation_with_the_amazon_deadline(session: Session) -> None:
    store = _store(session)
    result = store_mail(session, store, relay_mail(sent=T0), source="test")
    assert result.status == "new"
    message = session.get_one(Message, result.message_row_id)
    conversation = message.conversation
    assert conversation is not None
    assert conversation.status == ConversationStatus.OPEN
    assert conversation.order_id == "302-1234567-7654321"
    assert conversation.buyer_address == "k8w2m4xq7tz1r3v@marketplace.amazon.de"
    assert conversation.marketplace == "DE"
    assert conversation.amazon_deadline == T0 + timedelta(hours=24)
    assert message.received_at == T0
    assert message.processed_at is None  # waits for the drafting pipeline


def test_the_same_mail_twice_is_stored_once_and_raw_bytes_are_byte_exact(session: Session) -> None:
    store = _store(session)
    raw = relay_mail()
    assert store_mail(session, store, raw, source="a").status == "new"
    assert store_mail(session, store, raw, source="b").status == "duplicate"
    assert _count(session, Message) == 1
    message = session.scalars(select(Message)).one()
    assert session.get_one(RawMail, message.raw_sha256).content == raw


def test_same_message_id_with_different_bytes_is_a_duplicate(session: Session) -> None:
    store = _store(session)
    store_mail(session, store, relay_mail(body="first copy"), source="a")
    again = store_mail(session, store, relay_mail(body="re-encoded copy"), source="b")
    assert again.status == "duplicate"


def test_mail_without_message_id_is_deduplicated_by_content(session: Session) -> None:
    store = _store(session)
    raw = relay_mail(message_id=None)
    assert store_mail(session, store, raw, source="a").status == "new"
    assert store_mail(session, store, raw, source="a").status == "duplicate"


def test_unparsable_bytes_are_kept_with_the_reason_and_never_stop_the_import(session: Session) -> None:
    store = _store(session)
    garbage = b"\x00\x01\x02 not a mail at all \xff\xfe"
    result = store_mail(session, store, garbage, source="file:bad.eml")
    assert result.status == "unparsed"
    assert result.reason
    row = session.get_one(Message, result.message_row_id)
    assert row.kind == "unparsed" and row.parse_error == result.reason
    assert session.get_one(RawMail, row.raw_sha256).content == garbage
    assert store_mail(session, store, garbage, source="file:bad.eml").status == "duplicate"
    assert store_mail(session, store, relay_mail(), source="next").status == "new"


def test_second_buyer_message_joins_the_thread_and_keeps_the_oldest_deadline(session: Session) -> None:
    store = _store(session)
    store_mail(session, store, relay_mail(sent=T0), source="a")
    later = T0 + timedelta(hours=5)
    store_mail(session, store, relay_mail(sent=later, message_id="<test-2@x>", body="Any news?"), source="b")
    conversation = session.scalars(select(Conversation)).one()
    assert len(conversation.messages) == 2
    assert conversation.amazon_deadline == T0 + timedelta(hours=24)
    assert conversation.last_message_at == later


def test_other_order_of_the_same_buyer_is_another_thread(session: Session) -> None:
    store = _store(session)
    store_mail(session, store, relay_mail(), source="a")
    store_mail(session, store, relay_mail(order_id="302-7654321-1234567", message_id="<other@x>"), source="b")
    assert _count(session, Conversation) == 2


def test_mail_without_order_id_continues_the_buyers_latest_thread(session: Session) -> None:
    store = _store(session)
    store_mail(session, store, relay_mail(), source="a")
    store_mail(
        session, store, relay_mail(order_id=None, message_id="<no-order@x>", subject="Message from buyer"), source="b"
    )
    assert _count(session, Conversation) == 1


def test_plus_suffix_alias_is_kept_exactly(session: Session) -> None:
    store = _store(session)
    alias = "k8w2m4xq7tz1r3v+Case-4711@marketplace.amazon.de"
    result = store_mail(session, store, relay_mail(alias=alias), source="a")
    conversation = session.get_one(Message, result.message_row_id).conversation
    assert conversation is not None and conversation.buyer_address == alias


def test_stores_do_not_share_mail_or_threads(session: Session) -> None:
    first, second = _store(session, "A"), _store(session, "B")
    raw = relay_mail()
    assert store_mail(session, first, raw, source="a").status == "new"
    assert store_mail(session, second, raw, source="a").status == "new"
    assert _count(session, Conversation) == 2


def test_new_buyer_message_reopens_an_answered_conversation(session: Session) -> None:
    store = _store(session)
    store_mail(session, store, relay_mail(sent=T0), source="a")
    conversation = session.scalars(select(Conversation)).one()
    conversation.status, conversation.awaiting_since, conversation.amazon_deadline = "waiting", None, None
    later = T0 + timedelta(days=2)
    store_mail(session, store, relay_mail(sent=later, message_id="<again@x>", body="still nothing"), source="b")
    assert conversation.status == ConversationStatus.OPEN
    assert conversation.amazon_deadline == later + timedelta(hours=24)


def test_delivery_failure_marks_the_reply_it_refers_to_as_failed(session: Session) -> None:
    store = _store(session)
    store_mail(session, store, relay_mail(), source="a")
    conversation = session.scalars(select(Conversation)).one()
    draft = Draft(conversation=conversation, text="Hello", drafter="test", sources=[], verdict={})
    session.add(draft)
    session.flush()
    reply_id = "replydesk.1.abc@northwind.example"
    session.add(
        OutboxItem(
            draft_id=draft.id, conversation_id=conversation.id, store_id=store.id, state=OutboxState.SENT,
            message_id=reply_id, from_address="service@northwind.example", to_address=conversation.buyer_address,
            subject="Re: x", body="Hello", references=[],
        )
    )  # fmt: skip
    session.flush()
    bounce = (
        "From: Mail Delivery System <MAILER-DAEMON@amazonses.com>\r\n"
        "To: service@northwind.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Date: Fri, 20 Nov 2026 12:00:00 +0000\r\nMessage-ID: <bounce-1@amazonses.com>\r\n"
        f"In-Reply-To: <{reply_id}>\r\nContent-Type: text/plain\r\n\r\n"
        f"Your message could not be delivered.\r\n\r\nOriginal-Message-ID: <{reply_id}>\r\n"
    ).encode()
    result = store_mail(session, store, bounce, source="b")
    assert result.kind == "delivery_failure"
    outbox = session.scalars(select(OutboxItem)).one()
    assert outbox.state == OutboxState.FAILED
    assert outbox.last_error and "not delivered" in outbox.last_error
    notice = session.get_one(Message, result.message_row_id)
    assert notice.conversation_id == conversation.id and notice.processed_at is not None


# ---- batches: the same outcome as storing the mails one by one -------------------------------------------


@pytest.fixture
def no_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail when a batch falls back to one mail at a time: it would hide a wrong batch result."""

    def fail(*args: object) -> None:
        raise AssertionError("the batch hit a unique-key conflict and was stored one by one")

    monkeypatch.setattr(inbox, "_store_alone", fail)


def _incoming(*raws: bytes) -> list[IncomingMail]:
    return [IncomingMail(raw, source=f"batch:{i}") for i, raw in enumerate(raws)]


def test_duplicates_inside_one_batch_are_stored_once_and_every_copy_is_kept_raw(
    session: Session, no_fallback: None
) -> None:
    store = _store(session)
    first, reencoded = relay_mail(body="first copy"), relay_mail(body="re-encoded copy")  # one Message-ID
    other = relay_mail(message_id="<other@x>", order_id="302-7654321-1234567")
    results = store_mails(session, store, _incoming(first, reencoded, other, first))
    assert [r.status for r in results] == ["new", "duplicate", "new", "duplicate"]
    assert results[1].message_row_id == results[3].message_row_id == results[0].message_row_id
    assert results[1].kind == "buyer_message"
    assert _count(session, Message) == 2
    assert {r.content for r in session.scalars(select(RawMail))} == {first, reencoded, other}


def test_a_mail_stored_before_is_a_duplicate_in_a_later_batch(session: Session, no_fallback: None) -> None:
    store = _store(session)
    stored = store_mail(session, store, relay_mail(), source="a")
    results = store_mails(session, store, _incoming(relay_mail(), relay_mail(message_id="<new@x>", body="More?")))
    assert [(r.status, r.message_row_id) for r in results] == [("duplicate", stored.message_row_id), ("new", ANY)]
    assert _count(session, Message) == 2 and _count(session, Conversation) == 1


def test_two_mails_of_one_new_thread_in_one_batch_share_it(session: Session, no_fallback: None) -> None:
    store = _store(session)
    later = T0 + timedelta(hours=5)
    results = store_mails(
        session,
        store,
        _incoming(
            relay_mail(sent=later, message_id="<second@x>", body="Any news?"),
            relay_mail(sent=T0),
            relay_mail(order_id=None, message_id="<no-order@x>", sent=T0 + timedelta(hours=1)),
        ),
    )
    assert [r.status for r in results] == ["new", "new", "new"]
    conversation = session.scalars(select(Conversation)).one()  # the mail without order id continues it too
    ids = [r.message_row_id or 0 for r in results]
    assert 0 < ids[0] < ids[1] < ids[2]  # rows in mail order
    by_time = select(Message.id).where(Message.conversation_id == conversation.id).order_by(Message.received_at)
    assert list(session.scalars(by_time)) == [ids[1], ids[2], ids[0]]
    assert conversation.amazon_deadline == T0 + timedelta(hours=24)  # from the oldest, whatever the order
    assert conversation.last_message_at == later


def test_an_unparsed_mail_in_a_batch_is_kept_with_the_reason(session: Session, no_fallback: None) -> None:
    store = _store(session)
    garbage = b"\x00\x01\x02 not a mail at all \xff\xfe"
    results = store_mails(session, store, _incoming(garbage, relay_mail(), garbage))
    assert [r.status for r in results] == ["unparsed", "new", "duplicate"]
    assert results[0].reason and results[2].message_row_id == results[0].message_row_id
    row = session.get_one(Message, results[0].message_row_id)
    assert row.kind == "unparsed" and row.parse_error == results[0].reason
    assert session.get_one(RawMail, row.raw_sha256).content == garbage


def test_an_order_notice_finds_the_thread_its_batch_opened(session: Session, no_fallback: None) -> None:
    store = _store(session)
    demo = sorted(DEMO_DIR.glob("*.eml"))
    claim = next(p for p in demo if "atoz_claim" in p.name).read_bytes()
    order_id = parse_mail(claim).order_id
    assert order_id
    buyer = relay_mail(order_id=order_id)
    results = store_mails(session, store, _incoming(claim, buyer, claim.replace(b"Message-ID:", b"X-Old-ID:", 1)))
    notices = [session.get_one(Message, r.message_row_id) for r in (results[0], results[2])]
    conversation = session.get_one(Message, results[1].message_row_id).conversation
    assert conversation is not None
    assert notices[0].conversation_id is None  # stored before the thread existed, as it would be on its own
    assert notices[1].conversation_id == conversation.id


def _outcome(session: Session, result: StoredMail) -> tuple[object, ...]:
    row = session.get_one(Message, result.message_row_id) if result.message_row_id else None
    thread = row.conversation.thread_key if row is not None and row.conversation is not None else None
    return result.status, result.kind, result.reason, thread, row is not None and row.processed_at is None


def _threads(session: Session, store: Store) -> list[tuple[object, ...]]:
    rows = session.scalars(select(Conversation).where(Conversation.store_id == store.id).order_by(Conversation.id))
    return [
        (c.thread_key, c.buyer_address, c.order_id, c.marketplace, c.subject, c.status, c.last_message_at,
         c.awaiting_since, c.amazon_deadline, len(c.messages))
        for c in rows
    ]  # fmt: skip


def test_a_batch_ends_exactly_as_the_same_mails_stored_one_by_one(session: Session, no_fallback: None) -> None:
    demo = [path.read_bytes() for path in sorted(DEMO_DIR.glob("*.eml"))]
    again = [with_message_id(raw, f"again.{i}@relay.test") for i, raw in enumerate(demo)]
    mails = demo + again + demo[:5] + [b"\x00 not a mail \xff"] * 2 + [relay_mail(order_id=None)]
    one_by_one, batched = _store(session, "One by one"), _store(session, "Batched")

    singles = [store_mail(session, one_by_one, raw, source="x") for raw in mails]
    batch = store_mails(session, batched, [IncomingMail(raw, source="x") for raw in mails])

    assert [_outcome(session, r) for r in batch] == [_outcome(session, r) for r in singles]
    assert {r.status for r in batch} == {"new", "duplicate", "unparsed"}
    assert _threads(session, batched) == _threads(session, one_by_one)
    assert len(_threads(session, batched)) > 10


def test_mails_without_order_id_join_the_buyers_latest_thread_even_one_the_batch_updated(
    session: Session, no_fallback: None
) -> None:
    store = _store(session)
    hour = [T0 + timedelta(hours=h) for h in range(9)]
    orders = ["302-0000000-0000001", "302-0000000-0000002", "302-0000000-0000003"]
    store_mail(session, store, relay_mail(order_id=orders[0], message_id="<a@x>", sent=hour[5]), source="a")
    store_mail(session, store, relay_mail(order_id=orders[1], message_id="<b@x>", sent=hour[0]), source="a")
    results = store_mails(
        session,
        store,
        _incoming(
            relay_mail(order_id=None, subject="Message from buyer", message_id="<c@x>", sent=hour[6]),
            relay_mail(order_id=orders[2], message_id="<d@x>", sent=hour[7]),
            relay_mail(order_id=None, subject="Message from buyer", message_id="<e@x>", sent=hour[8]),
        ),
    )
    threads = [session.get_one(Message, r.message_row_id).conversation for r in results]
    # the latest by time, not the newest row; then the thread this batch opened and so made the latest
    assert [t.order_id if t else None for t in threads] == [orders[0], orders[2], orders[2]]


def test_an_order_notice_joins_the_orders_latest_thread(session: Session, no_fallback: None) -> None:
    store = _store(session)
    claim = next(DEMO_DIR.glob("*atoz_claim*.eml")).read_bytes()
    order_id = parse_mail(claim).order_id
    store_mail(session, store, relay_mail(order_id=order_id), source="a")
    other_alias = relay_mail(
        order_id=order_id, alias="k8w2m4xq7tz1r3v+Case-4711@marketplace.amazon.de", message_id="<b@x>"
    )
    results = store_mails(session, store, _incoming(other_alias, claim))
    newest = session.get_one(Message, results[0].message_row_id).conversation
    assert newest is not None and _count(session, Conversation) == 2
    assert session.get_one(Message, results[1].message_row_id).conversation_id == newest.id


@pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
def test_a_mail_a_concurrent_writer_stored_first_is_a_duplicate_and_the_rest_of_its_batch_is_stored(
    fresh_database: Database,
) -> None:
    with fresh_database.transaction() as setup:
        store_id = _store(setup).id
    other = relay_mail(order_id="302-7654321-1234567", message_id="<other@x>")
    results: list[StoredMail] = []

    def store_batch() -> None:
        with fresh_database.transaction() as session:
            store = session.get_one(Store, store_id)
            results.extend(store_mails(session, store, _incoming(relay_mail(body="re-encoded copy"), other)))

    with fresh_database.transaction() as writer:
        first = store_mail(writer, writer.get_one(Store, store_id), relay_mail(body="first copy"), source="w")
        batch = threading.Thread(target=store_batch)
        batch.start()
        assert _wait_for_lock_wait(fresh_database), "the batch never waited for the first writer's row"
    batch.join(timeout=30)  # the writer has committed: the batch's insert of that mail (and its thread) fails

    assert [(r.status, r.message_row_id) for r in results] == [("duplicate", first.message_row_id), ("new", ANY)]
    with fresh_database.transaction() as session:
        assert _count(session, Message) == 2 and _count(session, Conversation) == 2
        assert _count(session, RawMail) == 3  # the re-encoded copy's bytes are kept too


def _wait_for_lock_wait(db: Database, seconds: float = 10.0) -> bool:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deadline = time.monotonic() + seconds
    with db.engine.connect() as connection:
        while time.monotonic() < deadline:
            if connection.execute(waiting).scalar():
                return True
            time.sleep(0.02)
    return False

"""Storing mail: exactly once, raw bytes kept, threads rebuilt, Amazon's clock started, notices linked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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
from engine.services.inbox import store_mail
from engine.services.stores import ensure_store
from tests.helpers import relay_mail

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

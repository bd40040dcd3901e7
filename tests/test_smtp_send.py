"""Sending over SMTP, asserted on what a real server (aiosmtpd) received, on both database backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from engine.db import Database
from engine.db.models import (
    Conversation,
    ConversationStatus,
    Draft,
    DraftStatus,
    Message,
    Note,
    OutboxItem,
    OutboxState,
)
from engine.errors import SendError
from engine.send.smtp import SmtpConfig, SmtpSender, build_reply_message
from engine.send.worker import retry_delay, send_pending
from engine.settings import Settings
from tests.conftest import BACKENDS
from tests.servers import (  # noqa: F401
    BUYER_ALIAS,
    GOOD_REPLY,
    DovecotServer,
    SmtpCapture,
    dovecot_fixture,
    free_port,
    make_mailbox,
    queue_reply,
    smtp_server_fixture,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SENDER = "service@northwind-gear.example"


def _item(db: Database, item_id: int) -> OutboxItem:
    with db.transaction() as session:
        return session.get_one(OutboxItem, item_id)


def _notes(db: Database, conversation_id: int) -> list[str]:
    with db.transaction() as session:
        return list(session.scalars(select(Note.text).where(Note.conversation_id == conversation_id)))


def _text(message: EmailMessage) -> str:
    # Parsing CRLF wire bytes leaves the line ends as CRLF in the decoded text.
    return str(message.get_content()).replace("\r\n", "\n").rstrip("\r\n")


def _wire(capture: SmtpCapture, index: int = 0) -> EmailMessage:
    parsed = message_from_bytes(capture.received[index].content, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_reply_on_the_wire_is_exact_and_the_thread_shows_it(
    fresh_database: Database, settings: Settings, dovecot: DovecotServer, smtp_server: SmtpCapture
) -> None:
    user = dovecot.new_user()
    mailbox_id = make_mailbox(fresh_database, settings, dovecot, user, smtp=smtp_server, sender=SENDER)
    item_id = queue_reply(fresh_database, mailbox_id, buyer_message_id="buyer.1@eu-west-1.amazonses.com")

    counts = send_pending(fresh_database, settings, now=lambda: NOW)

    assert (counts.sent, counts.failed, counts.retrying) == (1, 0, 0)
    assert len(smtp_server.received) == 1
    envelope = smtp_server.received[0]
    assert envelope.mail_from == SENDER and envelope.rcpt_tos == [BUYER_ALIAS]
    wire = _wire(smtp_server)
    item = _item(fresh_database, item_id)
    assert wire["To"] == BUYER_ALIAS  # `+suffix` kept
    assert wire["From"] == SENDER
    assert wire["Message-ID"] == f"<{item.message_id}>"
    assert wire["In-Reply-To"] == "<buyer.1@eu-west-1.amazonses.com>"
    assert "<buyer.1@eu-west-1.amazonses.com>" in wire["References"]
    assert wire["Subject"].startswith("Re: Anfrage zu Rücksendung")
    assert b'Content-Type: text/plain; charset="utf-8"' in envelope.content
    assert _text(wire) == GOOD_REPLY  # the "." line survives

    assert item.state == OutboxState.SENT and item.sent_at == NOW and item.attempts == 1
    with fresh_database.transaction() as session:
        conversation = session.get_one(Conversation, item.conversation_id)
        assert conversation.status == ConversationStatus.WAITING
        assert conversation.awaiting_since is None and conversation.amazon_deadline is None
        outbound = session.scalars(
            select(Message).where(Message.conversation_id == conversation.id, Message.direction == "out")
        ).one()
        assert (outbound.kind, outbound.message_id, outbound.body) == ("reply", item.message_id, GOOD_REPLY)
        assert session.get_one(Draft, item.draft_id).status == DraftStatus.SENT
    with dovecot.connect(user) as conn:  # the copy in Sent is what a crash check looks for
        conn.select("Sent", readonly=True)
        _, found = conn.uid("SEARCH", "HEADER", "Message-ID", f'"<{item.message_id}>"')
        assert found[0].split()


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_running_twice_sends_once(fresh_database: Database, settings: Settings, smtp_server: SmtpCapture) -> None:
    mailbox_id = make_mailbox(fresh_database, settings, smtp=smtp_server)
    queue_reply(fresh_database, mailbox_id)
    first = send_pending(fresh_database, settings, now=lambda: NOW)
    second = send_pending(fresh_database, settings, now=lambda: NOW + timedelta(hours=2))
    assert first.sent == 1 and not any(vars(second).values())
    assert len(smtp_server.received) == 1


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_tampered_body_is_blocked_and_never_reaches_the_server(
    fresh_database: Database, settings: Settings, smtp_server: SmtpCapture
) -> None:
    mailbox_id = make_mailbox(fresh_database, settings, smtp=smtp_server)
    item_id = queue_reply(fresh_database, mailbox_id)
    with fresh_database.transaction() as session:  # edited behind the gate's back, straight in the table
        session.get_one(OutboxItem, item_id).body = GOOD_REPLY + "\nSchreiben Sie an lena@myshop.example"

    counts = send_pending(fresh_database, settings, now=lambda: NOW)

    assert counts.blocked == 1 and counts.sent == 0
    assert smtp_server.received == []
    item = _item(fresh_database, item_id)
    assert item.state == OutboxState.BLOCKED and item.attempts == 0
    assert item.last_error and "email" in item.last_error and "not sent" in item.last_error
    assert any("not sent" in note for note in _notes(fresh_database, item.conversation_id))
    assert not any(vars(send_pending(fresh_database, settings, now=lambda: NOW)).values())
    assert smtp_server.received == []


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_permanent_550_fails_with_the_servers_reason(
    fresh_database: Database, settings: Settings, smtp_server: SmtpCapture
) -> None:
    mailbox_id = make_mailbox(fresh_database, settings, smtp=smtp_server)
    item_id = queue_reply(fresh_database, mailbox_id)
    smtp_server.replies.append("550 5.7.1 Sender address not approved for this marketplace")

    counts = send_pending(fresh_database, settings, now=lambda: NOW)

    assert counts.failed == 1 and smtp_server.received == []
    item = _item(fresh_database, item_id)
    assert item.state == OutboxState.FAILED and item.next_attempt_at is None
    assert item.last_error and "550" in item.last_error and "not approved for this marketplace" in item.last_error
    assert any("not approved for this marketplace" in n for n in _notes(fresh_database, item.conversation_id))
    send_pending(fresh_database, settings, now=lambda: NOW + timedelta(days=1))
    assert smtp_server.received == [] and _item(fresh_database, item_id).attempts == 1


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_temporary_451_is_retried_after_a_backoff(
    fresh_database: Database, settings: Settings, smtp_server: SmtpCapture
) -> None:
    mailbox_id = make_mailbox(fresh_database, settings, smtp=smtp_server)
    item_id = queue_reply(fresh_database, mailbox_id)
    smtp_server.replies += ["451 4.3.0 Mailbox busy, try again later", "451 4.3.0 Still busy"]

    assert send_pending(fresh_database, settings, now=lambda: NOW).retrying == 1
    item = _item(fresh_database, item_id)
    assert item.state == OutboxState.FAILED and item.next_attempt_at == NOW + retry_delay(1)
    assert item.last_error and "451" in item.last_error and "retried" in item.last_error

    assert not any(vars(send_pending(fresh_database, settings, now=lambda: NOW + timedelta(seconds=30))).values())
    assert send_pending(fresh_database, settings, now=lambda: NOW + timedelta(minutes=1)).retrying == 1
    assert _item(fresh_database, item_id).next_attempt_at == NOW + timedelta(minutes=1) + retry_delay(2)
    assert send_pending(fresh_database, settings, now=lambda: NOW + timedelta(minutes=4)).sent == 1
    item = _item(fresh_database, item_id)
    assert (item.state, item.attempts, item.last_error) == (OutboxState.SENT, 3, None)
    assert len(smtp_server.received) == 1


@pytest.mark.parametrize(("attempts", "minutes"), [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (20, 60)])
def test_retry_delay_doubles_and_is_capped(attempts: int, minutes: int) -> None:
    assert retry_delay(attempts) == timedelta(minutes=minutes)


def test_unreachable_smtp_server_is_a_temporary_error() -> None:
    sender = SmtpSender(SmtpConfig("127.0.0.1", free_port(), "none", None, timeout=3))
    message = build_reply_message(
        from_address=SENDER,
        to_address=BUYER_ALIAS,
        subject="Re: x",
        body="Hallo",
        message_id="r.1@x",
        in_reply_to=None,
        references=(),
        date=NOW,
    )
    with pytest.raises(SendError) as caught:
        sender.send(message, sender=SENDER, recipient=BUYER_ALIAS)
    assert caught.value.code == "smtp_unreachable" and not caught.value.permanent


def test_reply_message_threads_and_encodes() -> None:
    message = build_reply_message(
        from_address=SENDER,
        to_address=BUYER_ALIAS,
        subject="Re: Rückfrage 注文",
        body="Grüße\n.\nend",
        message_id="r.1@northwind-gear.example",
        in_reply_to="<b.2@amazonses.com>",
        references=["a.1@x"],
        date=NOW,
    )
    raw = message.as_bytes()
    assert raw.isascii()  # quoted-printable body, RFC 2047 subject: safe through any relay
    assert message["References"] == "<a.1@x> <b.2@amazonses.com>"
    assert message["In-Reply-To"] == "<b.2@amazonses.com>"
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == "Re: Rückfrage 注文" and _text(parsed) == "Grüße\n.\nend"

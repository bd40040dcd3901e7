"""The outbox state machine with a recording sender and an in-memory Sent folder: crashes, retries, races."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from engine.db import Database
from engine.db.models import Conversation, ConversationStatus, Mailbox, Message, OutboxItem, OutboxState
from engine.errors import MailboxError, SendError
from engine.send.smtp import FakeSender, SendOutcomeUnknown, SmtpConfig
from engine.send.worker import LEASE, send_pending
from engine.services.inbox import store_mail
from engine.settings import Settings
from engine.sync import FakeMailServer, FakeSource, ImapConfig, MessageSource
from tests.conftest import BACKENDS
from tests.servers import THREAD_MAIL, make_mailbox, queue_reply, with_message_id

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class World:
    """A fake SMTP sender and a fake IMAP server behind the Sent-folder check."""

    def __init__(self) -> None:
        self.sender = FakeSender()
        self.imap = FakeMailServer()
        self.imap.folder("Sent")
        self.imap_down = False

    def sender_factory(self, config: SmtpConfig) -> FakeSender:
        return self.sender

    def sent_folder(self, config: ImapConfig) -> MessageSource:
        if self.imap_down:
            raise MailboxError("Cannot connect.", code="unreachable")
        return FakeSource(self.imap)

    def run(self, db: Database, settings: Settings, at: datetime = NOW) -> dict[str, int]:
        counts = send_pending(
            db, settings, sender_factory=self.sender_factory, sent_folder_checker=self.sent_folder, now=lambda: at
        )
        return {k: v for k, v in vars(counts).items() if v}


@pytest.fixture
def world() -> World:
    return World()


def _with_smtp(db: Database, settings: Settings) -> int:
    mailbox_id = make_mailbox(db, settings)
    with db.transaction() as session:
        session.get_one(Mailbox, mailbox_id).smtp_host = "smtp.fake"
    return mailbox_id


def _item(db: Database, item_id: int) -> OutboxItem:
    with db.transaction() as session:
        return session.get_one(OutboxItem, item_id)


def _crash_while_sending(db: Database, item_id: int, lease_until: datetime, *, handed_over: bool = True) -> None:
    """What a worker killed mid-SMTP leaves behind: `sending`, one attempt, its lease running until `lease_until`,
    and (`handed_over`) the DATA command possibly on its way."""
    with db.transaction() as session:
        item = session.get_one(OutboxItem, item_id)
        item.state, item.attempts, item.lease_until = OutboxState.SENDING, 1, lease_until
        item.handed_over_at = lease_until - LEASE if handed_over else None


def _files_sent_mail(db: Database, mailbox_id: int, value: bool | None) -> None:
    with db.transaction() as session:
        session.get_one(Mailbox, mailbox_id).files_sent_mail = value


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_interrupted_send_found_in_sent_folder_is_marked_sent_without_resending(
    fresh_database: Database, settings: Settings, world: World
) -> None:
    item_id = queue_reply(fresh_database, _with_smtp(fresh_database, settings))
    _crash_while_sending(fresh_database, item_id, NOW - timedelta(seconds=1))
    world.imap.add("Sent", f"Message-ID: <{_item(fresh_database, item_id).message_id}>\r\n\r\nHallo\r\n".encode())

    assert world.run(fresh_database, settings) == {"recovered": 1}
    assert world.sender.attempts == 0
    item = _item(fresh_database, item_id)
    assert item.state == OutboxState.SENT and item.sent_at == NOW
    with fresh_database.transaction() as session:
        assert session.get_one(Conversation, item.conversation_id).status == ConversationStatus.WAITING


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_interrupted_send_absent_from_a_sent_folder_the_provider_fills_is_retried_once(
    fresh_database: Database, settings: Settings, world: World
) -> None:
    mailbox_id = _with_smtp(fresh_database, settings)
    item_id = queue_reply(fresh_database, mailbox_id)
    _files_sent_mail(fresh_database, mailbox_id, True)
    _crash_while_sending(fresh_database, item_id, NOW - timedelta(seconds=1))

    assert world.run(fresh_database, settings) == {"sent": 1}
    assert len(world.sender.sent) == 1 and _item(fresh_database, item_id).attempts == 2
    assert len(world.imap.folders["Sent"].mails) == 1  # the copy for the next crash check
    assert world.run(fresh_database, settings, NOW + timedelta(hours=1)) == {}
    assert len(world.sender.sent) == 1


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
@pytest.mark.parametrize("files_sent_mail", [None, False])
def test_interrupted_send_absent_from_a_sent_folder_we_fill_is_unknown_not_resent(
    fresh_database: Database, settings: Settings, world: World, files_sent_mail: bool | None
) -> None:
    # Our own copy is stored after the server's 250: a crash before that leaves the folder without it, so
    # "not found" says nothing about delivery here.
    mailbox_id = _with_smtp(fresh_database, settings)
    item_id = queue_reply(fresh_database, mailbox_id)
    _files_sent_mail(fresh_database, mailbox_id, files_sent_mail)
    _crash_while_sending(fresh_database, item_id, NOW - timedelta(seconds=1))

    assert world.run(fresh_database, settings) == {"unknown": 1}
    item = _item(fresh_database, item_id)
    assert item.state == OutboxState.UNKNOWN and item.last_error and "not known to file sent mail" in item.last_error
    assert world.run(fresh_database, settings, NOW + timedelta(days=1)) == {}
    assert world.sender.attempts == 0


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_interrupted_send_that_never_reached_data_is_sent_again(
    fresh_database: Database, settings: Settings, world: World
) -> None:
    item_id = queue_reply(fresh_database, _with_smtp(fresh_database, settings))
    _crash_while_sending(fresh_database, item_id, NOW - timedelta(seconds=1), handed_over=False)
    world.imap_down = True  # not needed: the server cannot have the mail

    assert world.run(fresh_database, settings) == {"sent": 1}
    assert len(world.sender.sent) == 1 and _item(fresh_database, item_id).state == OutboxState.SENT


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_interrupted_send_that_cannot_be_checked_goes_to_a_human(
    fresh_database: Database, settings: Settings, world: World
) -> None:
    item_id = queue_reply(fresh_database, _with_smtp(fresh_database, settings))
    _crash_while_sending(fresh_database, item_id, NOW - timedelta(seconds=1))
    world.imap_down = True

    assert world.run(fresh_database, settings) == {"unknown": 1}
    item = _item(fresh_database, item_id)
    assert item.state == OutboxState.UNKNOWN and item.last_error and "Sent folder" in item.last_error
    assert world.sender.attempts == 0
    world.imap_down = False
    assert world.run(fresh_database, settings, NOW + timedelta(days=1)) == {}  # never retried by itself


def test_a_send_in_progress_is_left_alone(fresh_database: Database, settings: Settings, world: World) -> None:
    item_id = queue_reply(fresh_database, _with_smtp(fresh_database, settings))
    _crash_while_sending(fresh_database, item_id, NOW + timedelta(seconds=30))
    assert world.run(fresh_database, settings) == {}
    assert _item(fresh_database, item_id).state == OutboxState.SENDING and world.sender.attempts == 0


def test_lost_answer_after_data_is_unknown_unless_the_sent_folder_has_it(
    fresh_database: Database, settings: Settings, world: World
) -> None:
    mailbox_id = _with_smtp(fresh_database, settings)
    lost, filed = queue_reply(fresh_database, mailbox_id), queue_reply(fresh_database, mailbox_id)
    world.sender.outcomes = [SendOutcomeUnknown("connection dropped after DATA")] * 2

    # The provider files the second reply in Sent by itself (as Gmail and Outlook do).
    world.imap.add("Sent", f"Message-ID: <{_item(fresh_database, filed).message_id}>\r\n\r\nx\r\n".encode())
    assert world.run(fresh_database, settings) == {"unknown": 1, "sent": 1}
    assert _item(fresh_database, lost).state == OutboxState.UNKNOWN
    assert _item(fresh_database, filed).state == OutboxState.SENT
    assert world.run(fresh_database, settings, NOW + timedelta(days=1)) == {}
    assert world.sender.attempts == 2


def test_temporary_failures_give_up_after_max_attempts(
    fresh_database: Database, settings: Settings, world: World
) -> None:
    item_id = queue_reply(fresh_database, _with_smtp(fresh_database, settings))
    settings = settings.with_overrides(send_max_attempts=3)
    world.sender.outcomes = [SendError("451 busy")] * 3
    at = NOW
    for _ in range(3):
        world.run(fresh_database, settings, at)
        at += timedelta(hours=2)
    item = _item(fresh_database, item_id)
    assert item.state == OutboxState.FAILED and item.next_attempt_at is None and item.attempts == 3
    assert item.last_error and item.last_error.startswith("Gave up after 3 attempts")
    assert world.run(fresh_database, settings, at) == {}


def test_missing_smtp_settings_are_retryable(fresh_database: Database, settings: Settings, world: World) -> None:
    item_id = queue_reply(fresh_database, make_mailbox(fresh_database, settings))
    assert world.run(fresh_database, settings) == {"retrying": 1}
    item = _item(fresh_database, item_id)
    assert item.last_error and "no SMTP server" in item.last_error and world.sender.attempts == 0


def test_a_newer_buyer_message_keeps_the_clock_running(
    fresh_database: Database, settings: Settings, world: World
) -> None:
    item_id = queue_reply(fresh_database, _with_smtp(fresh_database, settings))
    item = _item(fresh_database, item_id)
    later = THREAD_MAIL.read_bytes().replace(b"Date: Mon, 16 Nov 2026 07:58:14", b"Date: Tue, 17 Nov 2026 09:00:00")
    with fresh_database.transaction() as session:
        conversation = session.get_one(Conversation, item.conversation_id)
        store_mail(session, conversation.store, with_message_id(later, "buyer.again@amazonses.com"), source="test")

    assert world.run(fresh_database, settings) == {"sent": 1}
    with fresh_database.transaction() as session:
        conversation = session.get_one(Conversation, item.conversation_id)
        assert conversation.status == ConversationStatus.OPEN
        assert conversation.awaiting_since == datetime(2026, 11, 17, 8, 0, tzinfo=UTC)
        assert session.scalars(select(Message).where(Message.direction == "out")).one().kind == "reply"


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_concurrent_workers_send_each_reply_once(fresh_database: Database, settings: Settings) -> None:
    mailbox_id = _with_smtp(fresh_database, settings)
    ids = [queue_reply(fresh_database, mailbox_id) for _ in range(12)]
    recorder, lock = FakeSender(), threading.Lock()

    class SlowSender:
        def send(
            self, message: EmailMessage, *, sender: str, recipient: str, before_data: Callable[[], None] | None = None
        ) -> None:
            time.sleep(0.02)  # long enough for the other workers to try to claim the same row
            with lock:
                recorder.send(message, sender=sender, recipient=recipient, before_data=before_data)

    world = World()
    results: list[int] = []

    def work() -> None:
        counts = send_pending(
            fresh_database,
            settings,
            sender_factory=lambda _: SlowSender(),
            sent_folder_checker=world.sent_folder,
            now=lambda: NOW,
        )
        results.append(counts.sent)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sent_ids = [m.message["Message-ID"] for m in recorder.sent]
    assert len(sent_ids) == len(set(sent_ids)) == 12 and sum(results) == 12
    assert all(_item(fresh_database, i).state == OutboxState.SENT for i in ids)

"""Poison replies never stop the send pass; uncertain sends go to a human, who marks them sent or sends again;
the Sent-folder filing of a mailbox is detected; a slow send keeps its lease."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.compliance import Verdict, check_outgoing
from engine.db import Database
from engine.db.models import Agent, AuditEvent, Draft, DraftStatus, Mailbox, OutboxItem, OutboxState
from engine.errors import ComplianceBlocked, ConflictError, SendError
from engine.send.outbox import reply_subject
from engine.send.resolve import mark_sent_by_hand, send_again
from engine.send.smtp import FakeSender, SendOutcomeUnknown, SmtpConfig, build_reply_message, clean_header_value
from engine.send.worker import send_pending
from engine.settings import Settings
from engine.sync import FakeMailServer, FakeSource, ImapConfig, MessageSource
from engine.workflow.permissions import Principal, Role
from tests.conftest import BACKENDS
from tests.servers import GOOD_REPLY, THREAD_MAIL, make_mailbox, queue_reply

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SENDER = "service@northwind-gear.example"


class World:
    """A fake SMTP sender and a fake IMAP server behind the Sent-folder checks; `provider_files` makes the
    "provider" file each accepted mail in Sent by itself, as Gmail does."""

    def __init__(self, provider_files: bool = False) -> None:
        self.sender = FakeSender()
        self.imap = FakeMailServer()
        self.imap.folder("Sent")
        self.provider_files = provider_files

    def sender_factory(self, config: SmtpConfig) -> FakeSender:
        return self.sender

    def sent_folder(self, config: ImapConfig) -> MessageSource:
        if self.provider_files:
            for mail in self.sender.sent[len(self.imap.folders["Sent"].mails) :]:
                self.imap.add("Sent", mail.message.as_bytes())
        return FakeSource(self.imap)

    def run(self, db: Database, settings: Settings, at: datetime = NOW) -> dict[str, int]:
        counts = send_pending(
            db, settings, sender_factory=self.sender_factory, sent_folder_checker=self.sent_folder, now=lambda: at
        )
        return {k: v for k, v in vars(counts).items() if v}


def _with_smtp(db: Database, settings: Settings) -> int:
    mailbox_id = make_mailbox(db, settings)
    with db.transaction() as session:
        session.get_one(Mailbox, mailbox_id).smtp_host = "smtp.fake"
    return mailbox_id


def _item(db: Database, item_id: int) -> OutboxItem:
    with db.transaction() as session:
        return session.get_one(OutboxItem, item_id)


def _set(db: Database, item_id: int, **values: object) -> None:
    with db.transaction() as session:
        item = session.get_one(OutboxItem, item_id)
        for name, value in values.items():
            setattr(item, name, value)


def _files_sent_mail(db: Database, mailbox_id: int) -> bool | None:
    with db.transaction() as session:
        return session.get_one(Mailbox, mailbox_id).files_sent_mail


# ---- header values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Rücksendung 304-2290311", "Rücksendung 304-2290311"),
        ("Hallo\r\nBcc: victim@example.com", "Hallo Bcc: victim@example.com"),
        ("Hallo\u2028Bcc: x@y.z\u2029end", "Hallo Bcc: x@y.z end"),
        ("a\x00b\x1bc\x7fd\x85e", "a b c d e"),
        ("\u202eevil\u202c name", "evil name"),
        ("  \t\r\n ", ""),
        ("x" * 10_000, "x" * 250),
        ("注文について\n\n", "注文について"),
    ],
)
def test_header_values_are_one_clean_line(raw: str, clean: str) -> None:
    assert clean_header_value(raw) == clean


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Anfrage\r\nX-Injected: 1", "Re: Anfrage X-Injected: 1"),
        ("RE: Frage\u2028", "RE: Frage"),
        ("\r\n", "Re: Your message"),
    ],
)
def test_reply_subject_is_clean(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_a_subject_with_line_breaks_builds_one_header_line() -> None:
    message = build_reply_message(
        from_address=SENDER,
        to_address="buyer+x@marketplace.amazon.de",
        subject="Re: Hallo\r\nBcc: victim@example.com\u2028X: y",
        body="Danke",
        message_id="r.1@northwind-gear.example",
        in_reply_to="b.2@amazonses.com\u2028Bcc: v@x",
        references=("a.1@x\r\nCc: w@x",),
        date=NOW,
    )
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["Bcc"] is None and parsed["X"] is None and parsed["Cc"] is None
    assert parsed["In-Reply-To"] == "<b.2@amazonses.comBcc:v@x>"
    assert parsed["Subject"] == "Re: Hallo Bcc: victim@example.com X: y"


@pytest.mark.parametrize("address", ["a@b\r\nBcc: c@d", "two words@x.de", "no-at-sign", "a@b,c@d", "<a@b>", ""])
def test_an_unusable_address_is_a_permanent_error(address: str) -> None:
    with pytest.raises(SendError) as caught:
        build_reply_message(
            from_address=SENDER,
            to_address=address,
            subject="Re: x",
            body="Danke",
            message_id="r.1@x",
            in_reply_to=None,
            references=(),
            date=NOW,
        )
    assert caught.value.permanent and caught.value.code == "bad_address" and "not a single valid" in str(caught.value)


# ---- one poison item never stops the pass --------------------------------------------------------------


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_poison_replies_end_failed_with_a_reason_and_the_others_are_sent(
    fresh_database: Database, settings: Settings
) -> None:
    settings = settings.with_overrides(send_max_attempts=2)
    world = World()
    mailbox_id = _with_smtp(fresh_database, settings)
    poison_subject, bad_address, damaged, good = (queue_reply(fresh_database, mailbox_id) for _ in range(4))
    _set(fresh_database, poison_subject, subject="Re: Frage\r\nX-Injected: yes\u2028more\u2029")  # an old row
    _set(fresh_database, bad_address, to_address="buyer@relay.example\r\nBcc: victim@example.com")
    _set(fresh_database, damaged, references=[["not", "a", "message-id"]], in_reply_to="b@x\u2028Bcc: v@x")

    assert world.run(fresh_database, settings) == {"sent": 2, "failed": 1, "retrying": 1}
    assert world.run(fresh_database, settings, NOW + timedelta(hours=2)) == {"failed": 1}

    sent_ids = sorted(m.message["Message-ID"] for m in world.sender.sent)
    expected = sorted(f"<{_item(fresh_database, i).message_id}>" for i in (poison_subject, good))
    assert sent_ids == expected
    wire = next(m.message for m in world.sender.sent if m.message["Message-ID"] == expected[0])
    assert "\n" not in str(wire["Subject"]) and "\u2028" not in str(wire["Subject"])
    address_item = _item(fresh_database, bad_address)
    assert address_item.state == OutboxState.FAILED and address_item.attempts == 1
    assert address_item.last_error and "not a single valid e-mail address" in address_item.last_error
    body_item = _item(fresh_database, damaged)
    assert body_item.state == OutboxState.FAILED and body_item.next_attempt_at is None and body_item.attempts == 2
    assert body_item.last_error and body_item.last_error.startswith("Gave up after 2 attempts")
    assert "could not be built" in body_item.last_error
    assert world.run(fresh_database, settings, NOW + timedelta(days=1)) == {}


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_gate_that_crashes_on_one_reply_does_not_stop_the_others(
    fresh_database: Database, settings: Settings
) -> None:
    world = World()
    mailbox_id = _with_smtp(fresh_database, settings)
    crashing, good = queue_reply(fresh_database, mailbox_id), queue_reply(fresh_database, mailbox_id)
    _set(fresh_database, crashing, body=GOOD_REPLY + " [crash]")

    def gate(text: str, **kwargs: Any) -> Verdict:
        if "[crash]" in text:
            raise RecursionError("maximum recursion depth exceeded")
        return check_outgoing(text, **kwargs)

    counts = send_pending(
        fresh_database,
        settings,
        sender_factory=world.sender_factory,
        sent_folder_checker=world.sent_folder,
        now=lambda: NOW,
        gate=gate,
    )
    assert (counts.sent, counts.retrying) == (1, 1)
    assert _item(fresh_database, good).state == OutboxState.SENT
    item = _item(fresh_database, crashing)
    assert item.state == OutboxState.FAILED and item.last_error and "compliance check could not run" in item.last_error


def test_a_stored_buyer_subject_with_encoded_line_breaks_gives_a_clean_reply_subject(
    fresh_database: Database, settings: Settings
) -> None:
    raw = THREAD_MAIL.read_bytes()
    start = raw.index(b"Subject:")
    end = raw.index(b"\n", start)
    poisoned = raw[:start] + b"Subject: =?utf-8?Q?Frage=0D=0ABcc:_victim@example.com=E2=80=A8X?=" + raw[end:]
    mailbox_id = _with_smtp(fresh_database, settings)
    with fresh_database.transaction() as session:
        from engine.services.inbox import store_mail

        store_mail(session, session.get_one(Mailbox, mailbox_id).store, poisoned, source="test", mailbox_id=mailbox_id)
    item_id = queue_reply(fresh_database, mailbox_id)
    subject = _item(fresh_database, item_id).subject
    assert "\r" not in subject and "\n" not in subject and "\u2028" not in subject
    world = World()
    assert world.run(fresh_database, settings) == {"sent": 1}


# ---- detection of the provider's Sent filing -----------------------------------------------------------


@pytest.mark.parametrize("provider_files", [True, False])
def test_each_send_records_whether_the_provider_files_sent_mail(
    fresh_database: Database, settings: Settings, provider_files: bool
) -> None:
    world = World(provider_files=provider_files)
    mailbox_id = _with_smtp(fresh_database, settings)
    queue_reply(fresh_database, mailbox_id)
    assert _files_sent_mail(fresh_database, mailbox_id) is None

    assert world.run(fresh_database, settings) == {"sent": 1}
    assert _files_sent_mail(fresh_database, mailbox_id) is provider_files
    assert len(world.imap.folders["Sent"].mails) == 1  # the provider's copy, or ours: never both


def test_lost_answer_on_a_filing_mailbox_is_checked_again_after_the_lease(
    fresh_database: Database, settings: Settings
) -> None:
    world = World()
    mailbox_id = _with_smtp(fresh_database, settings)
    with fresh_database.transaction() as session:
        session.get_one(Mailbox, mailbox_id).files_sent_mail = True
    late, lost = queue_reply(fresh_database, mailbox_id), queue_reply(fresh_database, mailbox_id)
    world.sender.outcomes = [SendOutcomeUnknown("connection dropped after DATA")] * 2
    world.sender.sent.clear()

    assert world.run(fresh_database, settings) == {"rechecking": 2}
    assert _item(fresh_database, late).state == OutboxState.SENDING
    assert world.run(fresh_database, settings, NOW + timedelta(minutes=1)) == {}  # still within the lease

    # The provider filed the first one late; the second never arrived (FakeSender recorded both, so drop it).
    world.imap.add("Sent", world.sender.sent[0].message.as_bytes())
    del world.sender.sent[1]
    assert world.run(fresh_database, settings, NOW + timedelta(minutes=6)) == {"recovered": 1, "sent": 1}
    assert _item(fresh_database, late).state == OutboxState.SENT and _item(fresh_database, late).attempts == 1
    assert _item(fresh_database, lost).state == OutboxState.SENT and _item(fresh_database, lost).attempts == 2
    assert [m.message["Message-ID"] for m in world.sender.sent].count(
        f"<{_item(fresh_database, lost).message_id}>"
    ) == 1


# ---- an agent decides an unknown reply -----------------------------------------------------------------


def _unknown_reply(db: Database, settings: Settings) -> tuple[int, Principal]:
    world = World()
    mailbox_id = _with_smtp(db, settings)
    item_id = queue_reply(db, mailbox_id)
    world.sender.outcomes = [SendOutcomeUnknown("connection dropped after DATA")]
    assert world.run(db, settings) == {"unknown": 1}
    store_id = _item(db, item_id).store_id
    with db.transaction() as session:
        agent = Agent(username="sam", display_name="Sam", role=Role.AGENT)
        session.add(agent)
        session.flush()
        return item_id, Principal(agent.id, Role.AGENT, frozenset({store_id}))


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_mark_sent_by_hand_settles_an_unknown_reply_without_sending(
    fresh_database: Database, settings: Settings
) -> None:
    item_id, principal = _unknown_reply(fresh_database, settings)
    with fresh_database.transaction() as session:
        mark_sent_by_hand(session, principal, item_id)
    item = _item(fresh_database, item_id)
    assert item.state == OutboxState.SENT
    with fresh_database.transaction() as session:
        assert session.get_one(Draft, item.draft_id).status == DraftStatus.SENT
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "outbox.sent")).one()
        assert event.actor_id == principal.agent_id and event.after and event.after["how"] == "marked sent by an agent"
        with pytest.raises(ConflictError):
            mark_sent_by_hand(session, principal, item_id)  # decided already


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_send_again_goes_through_the_gate_and_is_sent_once(fresh_database: Database, settings: Settings) -> None:
    item_id, principal = _unknown_reply(fresh_database, settings)
    _set(fresh_database, item_id, body=GOOD_REPLY + "\nSchreiben Sie an lena@myshop.example")
    with fresh_database.transaction() as session, pytest.raises(ComplianceBlocked):
        send_again(session, principal, item_id)
    assert _item(fresh_database, item_id).state == OutboxState.UNKNOWN

    _set(fresh_database, item_id, body=GOOD_REPLY)
    with fresh_database.transaction() as session:
        send_again(session, principal, item_id)
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "outbox.send_again")).one()
        assert event.actor_id == principal.agent_id
    world = World()
    assert world.run(fresh_database, settings) == {"sent": 1}
    assert world.run(fresh_database, settings, NOW + timedelta(days=1)) == {}
    assert len(world.sender.sent) == 1


# ---- the lease while a slow send runs ------------------------------------------------------------------


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_send_slower_than_the_lease_is_not_taken_over_by_another_worker(
    fresh_database: Database, settings: Settings
) -> None:
    item_id = queue_reply(fresh_database, _with_smtp(fresh_database, settings))
    lease = timedelta(seconds=0.8)
    recorder, started, lock = FakeSender(), threading.Event(), threading.Lock()

    class SlowSender:
        def send(
            self, message: EmailMessage, *, sender: str, recipient: str, before_data: Callable[[], None] | None = None
        ) -> None:
            if before_data is not None:
                before_data()
            started.set()
            time.sleep(3.0)  # almost four leases long
            with lock:
                recorder.send(message, sender=sender, recipient=recipient)

    world = World()

    def first() -> None:
        send_pending(
            fresh_database,
            settings,
            sender_factory=lambda _: SlowSender(),
            sent_folder_checker=world.sent_folder,
            lease=lease,
        )

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(10)
    others = []
    while thread.is_alive():
        others.append(
            send_pending(
                fresh_database,
                settings,
                sender_factory=lambda _: SlowSender(),
                sent_folder_checker=world.sent_folder,
                lease=lease,
            )
        )
        time.sleep(0.2)
    thread.join()
    assert len(recorder.sent) == 1 and _item(fresh_database, item_id).state == OutboxState.SENT
    assert len(others) >= 5 and not any(any(vars(c).values()) for c in others)
    assert _item(fresh_database, item_id).lease_until is None


def test_a_failing_send_pass_is_reported_and_the_worker_goes_on(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli_workers import _send_once

    unusable = Database(f"sqlite:///{tmp_path / 'no-such-folder' / 'replydesk.db'}")  # cannot even be opened
    _send_once(unusable, settings)  # returns: the worker's sync and drafting steps run next
    assert "send: error:" in capsys.readouterr().err

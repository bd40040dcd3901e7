"""No mail blocks a mailbox: poison mail stored `unparsed` or quarantined while the mark moves on, memory
exhaustion, database failures recorded on the mailbox, runs of killed syncs closed as `interrupted`,
arrival times from the server, and mails too large to take whole. Both database backends."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

import engine.services.inbox as inbox
from engine.db import Database
from engine.db.models import Conversation, Mailbox, Message, QuarantinedMail, RawMail, Store, SyncRun
from engine.errors import InputError
from engine.services.inbox import clamp_arrival, sanitise_text
from engine.services.mailboxes import add_mailbox
from engine.settings import Settings
from engine.sync import FakeMailServer, FakeSource
from engine.sync.batch import size_groups
from engine.sync.quarantine import retry_quarantined
from engine.sync.runner import holder_alive, sync_mailbox
from tests.conftest import BACKENDS
from tests.servers import DEMO_DIR, relay_mails, with_message_id

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _mailbox(db: Database, settings: Settings) -> int:
    with db.transaction() as session:
        store = Store(name=f"Fake {uuid.uuid4().hex[:6]}", allow_list=[], marketplaces=[])
        session.add(store)
        session.flush()
        return add_mailbox(session, settings, store, name="fake", imap_host="imap.fake", username="u", password="p").id


def _sync(db: Database, settings: Settings, mailbox_id: int, server: FakeMailServer, **kwargs: Any) -> Any:
    return sync_mailbox(db, mailbox_id, settings, source_factory=lambda _: FakeSource(server), **kwargs)


def _messages(db: Database, mailbox_id: int) -> list[Message]:
    with db.transaction() as session:
        return list(session.scalars(select(Message).where(Message.mailbox_id == mailbox_id).order_by(Message.id)))


def _quarantined(db: Database, mailbox_id: int) -> list[QuarantinedMail]:
    with db.transaction() as session:
        query = select(QuarantinedMail).where(QuarantinedMail.mailbox_id == mailbox_id).order_by(QuarantinedMail.uid)
        return list(session.scalars(query))


def _uid(message: Message) -> int:
    assert message.source is not None
    return int(message.source.rsplit(":", 1)[1])


# ---- pure parts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "not_before", "expected", "flagged"),
    [
        (NOW - timedelta(hours=1), None, NOW - timedelta(hours=1), False),
        (NOW + timedelta(minutes=4), None, NOW + timedelta(minutes=4), False),  # clock skew tolerated
        (NOW + timedelta(minutes=6), None, NOW, True),
        (datetime(9999, 12, 31, tzinfo=UTC), None, NOW, True),
        (NOW - timedelta(days=400), NOW - timedelta(days=91), NOW - timedelta(days=91), True),
        (NOW - timedelta(days=90), NOW - timedelta(days=91), NOW - timedelta(days=90), False),
    ],
)
def test_arrival_dates_in_the_future_or_before_the_mailbox_are_clamped(
    when: datetime, not_before: datetime | None, expected: datetime, flagged: bool
) -> None:
    recorded, why = clamp_arrival(when, now=NOW, not_before=not_before)
    assert recorded == expected and (why is not None) == flagged


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("plain", 10, "plain"),
        ("a\x00b\x07c", 10, "abc"),
        ("line\nbreak\ttab", 20, "line\nbreak\ttab"),
        ("lone \ud800 surrogate", 30, "lone ? surrogate"),
        ("x" * 50, 8, "x" * 8),
        (None, 5, ""),
    ],
)
def test_sanitised_text_fits_any_column(value: str | None, limit: int, expected: str) -> None:
    assert sanitise_text(value, limit) == expected


def test_groups_bound_the_bytes_held_at_once() -> None:
    sizes = {1: 10, 2: 10, 3: 500, 4: 10, 5: 10}
    assert size_groups([5, 4, 3, 2, 1], sizes, max_mail_bytes=100, budget=25) == [[1, 2], [3], [4, 5]]
    assert size_groups([1, 2, 9], sizes, max_mail_bytes=100, budget=1000) == [[1, 2, 9]]  # 9: unknown size


def test_a_claim_by_a_dead_process_or_past_its_lease_is_free() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    host = socket.gethostname()
    later = NOW + timedelta(minutes=5)
    assert not holder_alive(f"{host}:{dead.pid}:x", later, NOW)
    assert holder_alive(f"{host}:{os.getppid()}:x", later, NOW)  # a live process on this machine
    assert holder_alive("elsewhere:1:x", later, NOW) and not holder_alive("elsewhere:1:x", NOW, NOW)
    assert not holder_alive(f"{host}:{os.getpid()}:not-running-here", later, NOW)
    assert not holder_alive(None, later, NOW)


# ---- poison mail --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_mail_the_database_refuses_is_stored_unparsed_and_the_batch_goes_on(
    fresh_database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeMailServer()
    mails = relay_mails(5)
    for raw in mails:
        server.add("INBOX", raw, NOW)
    real_new_row = inbox._new_row

    def unstorable_subject(store: Store, mail: Any, *args: Any) -> Message:
        row = real_new_row(store, mail, *args)
        if mail.mail.raw == mails[1]:
            row.subject = "broken \ud800 subject\x00"  # neither backend can encode a lone surrogate
        return row

    monkeypatch.setattr(inbox, "_new_row", unstorable_subject)
    mailbox_id = _mailbox(fresh_database, settings)
    summary = _sync(fresh_database, settings, mailbox_id, server, now=lambda: NOW)

    assert (summary.status, summary.fetched, summary.new, summary.unparsed, summary.last_uid) == ("partial", 5, 4, 1, 5)
    stored = _messages(fresh_database, mailbox_id)
    assert [_uid(m) for m in stored] == [1, 2, 3, 4, 5]
    poison = stored[1]
    assert poison.kind == "unparsed" and poison.parse_error and "could not be stored as parsed" in poison.parse_error
    assert poison.subject and "\x00" not in poison.subject and poison.raw_sha256 is not None
    assert all(m.kind != "unparsed" for m in stored if m is not poison)


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_mail_refused_even_unparsed_is_quarantined_and_can_be_retried(
    fresh_database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeMailServer()
    mails = relay_mails(4)
    for raw in mails:
        server.add("INBOX", raw, NOW)
    real_new_row, real_sanitised = inbox._new_row, inbox._store_sanitised

    def refuse(store: Store, mail: Any, *args: Any) -> Message:
        if mail.mail.raw == mails[2]:
            raise ValueError("storage refused")
        return real_new_row(store, mail, *args)

    def refuse_too(session: Any, store: Store, mail: Any, why: str) -> Any:
        if mail.mail.raw == mails[2]:
            raise ValueError("still refused")
        return real_sanitised(session, store, mail, why)

    monkeypatch.setattr(inbox, "_new_row", refuse)
    monkeypatch.setattr(inbox, "_store_sanitised", refuse_too)
    mailbox_id = _mailbox(fresh_database, settings)
    summary = _sync(fresh_database, settings, mailbox_id, server, now=lambda: NOW)

    assert (summary.status, summary.new, summary.quarantined, summary.last_uid) == ("partial", 3, 1, 4)
    assert [_uid(m) for m in _messages(fresh_database, mailbox_id)] == [1, 2, 4]
    [held] = _quarantined(fresh_database, mailbox_id)
    assert (held.uid, held.size, held.status) == (3, len(mails[2]), "waiting")
    assert "storage refused" in held.reason and "still refused" in held.reason and held.raw_sha256
    with fresh_database.transaction() as session:
        run = session.get_one(SyncRun, summary.run_id)
        assert (run.status, run.quarantined) == ("partial", 1)
        assert any(e["code"] == "quarantined" and e["uid"] == 3 for e in run.errors)

    monkeypatch.undo()  # the fix is deployed: the retry stores it
    outcome = retry_quarantined(fresh_database, settings, held.id)
    assert outcome.stored and outcome.status == "new"
    assert [_uid(m) for m in _messages(fresh_database, mailbox_id)] == [1, 2, 4, 3]
    [done] = _quarantined(fresh_database, mailbox_id)
    assert (done.status, done.attempts, done.message_row_id) == ("stored", 1, outcome.message_row_id)


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_memory_exhaustion_splits_the_batch_and_quarantines_only_the_mail_that_causes_it(
    fresh_database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeMailServer()
    for raw in relay_mails(6):
        server.add("INBOX", raw, NOW)
    real_fetch = FakeSource.fetch
    calls: list[list[int]] = []

    def fetch(self: FakeSource, uids: Any) -> Any:
        calls.append(list(uids))
        if 4 in uids:
            raise MemoryError
        return real_fetch(self, uids)

    monkeypatch.setattr(FakeSource, "fetch", fetch)
    mailbox_id = _mailbox(fresh_database, settings)
    summary = _sync(fresh_database, settings, mailbox_id, server, now=lambda: NOW)

    assert calls[0] == [1, 2, 3, 4, 5, 6] and [4] in calls
    assert (summary.new, summary.quarantined, summary.last_uid) == (5, 1, 6)
    [held] = _quarantined(fresh_database, mailbox_id)
    assert held.uid == 4 and "memory" in held.reason and held.raw_sha256 is None
    assert sorted(_uid(m) for m in _messages(fresh_database, mailbox_id)) == [1, 2, 3, 5, 6]

    monkeypatch.undo()  # its bytes were not kept: the retry fetches it from the server again
    outcome = retry_quarantined(fresh_database, settings, held.id, source_factory=lambda _: FakeSource(server))
    assert outcome.stored and sorted(_uid(m) for m in _messages(fresh_database, mailbox_id)) == [1, 2, 3, 4, 5, 6]
    server.recreate("INBOX")  # a new UIDVALIDITY: UID 4 now means another mail, so nothing is fetched
    with fresh_database.transaction() as session:
        session.get_one(QuarantinedMail, held.id).status = "waiting"
    with pytest.raises(InputError, match="was recreated"):
        retry_quarantined(fresh_database, settings, held.id, source_factory=lambda _: FakeSource(server))


# ---- failures are recorded; killed runs are closed --------------------------------------------------------


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_database_failure_mid_sync_is_recorded_on_the_mailbox_and_the_run_ends(
    fresh_database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeMailServer()
    for raw in relay_mails(4):
        server.add("INBOX", raw, NOW)
    settings = settings.with_overrides(sync_batch_size=2)
    real_store = inbox.store_resilient
    calls = []

    def fail_second_batch(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        return real_store(*args)

    monkeypatch.setattr("engine.sync.batch.store_resilient", fail_second_batch)
    mailbox_id = _mailbox(fresh_database, settings)
    summary = _sync(fresh_database, settings, mailbox_id, server, now=lambda: NOW)

    assert (summary.status, summary.error_code, summary.new, summary.last_uid) == ("error", "database", 2, 2)
    assert summary.line().startswith("fake: error") and "database" in summary.line()
    with fresh_database.transaction() as session:
        mailbox = session.get_one(Mailbox, mailbox_id)
        assert mailbox.last_error_code == "database" and mailbox.last_error
        assert "next sync continues" in mailbox.last_error and mailbox.sync_owner is None
        run = session.get_one(SyncRun, summary.run_id)
        assert run.status == "error" and run.finished_at is not None

    monkeypatch.undo()
    again = _sync(fresh_database, settings, mailbox_id, server, now=lambda: NOW)
    assert (again.status, again.new, again.last_uid) == ("ok", 2, 4)
    with fresh_database.transaction() as session:
        assert session.get_one(Mailbox, mailbox_id).last_error_code is None


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_run_left_running_by_a_dead_process_is_closed_as_interrupted(
    fresh_database: Database, settings: Settings
) -> None:
    server = FakeMailServer()
    server.add("INBOX", relay_mails(1)[0], NOW)
    mailbox_id = _mailbox(fresh_database, settings)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    with fresh_database.transaction() as session:
        mailbox = session.get_one(Mailbox, mailbox_id)
        mailbox.sync_owner = f"{socket.gethostname()}:{dead.pid}:killed"
        mailbox.sync_lease_until = datetime.now(UTC) + timedelta(minutes=5)
        session.add(SyncRun(kind="imap", store_id=mailbox.store_id, mailbox_id=mailbox_id, status="running"))

    summary = _sync(fresh_database, settings, mailbox_id, server)

    assert (summary.status, summary.new) == ("ok", 1)
    with fresh_database.transaction() as session:
        runs = list(session.scalars(select(SyncRun).where(SyncRun.mailbox_id == mailbox_id).order_by(SyncRun.id)))
        assert [r.status for r in runs] == ["interrupted", "ok"]
        assert runs[0].finished_at is not None and runs[0].errors[0]["code"] == "interrupted"
        assert session.get_one(Mailbox, mailbox_id).sync_owner is None


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_mailbox_claimed_by_a_live_sync_is_skipped(fresh_database: Database, settings: Settings) -> None:
    server = FakeMailServer()
    server.add("INBOX", relay_mails(1)[0], NOW)
    mailbox_id = _mailbox(fresh_database, settings)
    import socket

    with fresh_database.transaction() as session:
        mailbox = session.get_one(Mailbox, mailbox_id)
        mailbox.sync_owner = f"{socket.gethostname()}:{os.getppid()}:busy"  # a live process
        mailbox.sync_lease_until = datetime.now(UTC) + timedelta(minutes=5)
    summary = _sync(fresh_database, settings, mailbox_id, server)
    assert (summary.status, summary.fetched) == ("skipped", 0)
    assert _messages(fresh_database, mailbox_id) == []


# ---- arrival time, suspicious mail, size limits ---------------------------------------------------------


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_arrival_time_is_the_servers_and_impossible_dates_are_clamped_and_flagged(
    fresh_database: Database, settings: Settings
) -> None:
    server = FakeMailServer()
    received = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    mails = relay_mails(3)
    server.add("INBOX", mails[0], received)
    server.add("INBOX", mails[1], datetime(2099, 1, 1, tzinfo=UTC))  # a server clock far ahead
    server.add("INBOX", mails[2], received - timedelta(days=3000))  # older than the mailbox can hold
    mailbox_id = _mailbox(fresh_database, settings)
    summary = sync_mailbox(
        fresh_database,
        mailbox_id,
        settings.with_overrides(backfill_days=0),
        source_factory=lambda _: FakeSource(server),
    )
    assert summary.new == 3
    normal, future, ancient = _messages(fresh_database, mailbox_id)
    assert normal.received_at == received and not any("arrival date" in f for f in normal.flags)
    assert future.received_at <= datetime.now(UTC) and any("in the future" in f for f in future.flags)
    # With the whole folder read on first contact (backfill 0) any age is possible: kept as the server says.
    assert ancient.received_at == received - timedelta(days=3000)

    other = FakeMailServer()
    other.add("INBOX", relay_mails(1)[0], NOW)
    second = _mailbox(fresh_database, settings)
    created = NOW + timedelta(days=200)
    with fresh_database.transaction() as session:
        session.get_one(Mailbox, second).created_at = created  # the mail claims a time before the mailbox
    assert sync_mailbox(fresh_database, second, settings, source_factory=lambda _: FakeSource(other)).new == 1
    [clamped] = _messages(fresh_database, second)
    assert clamped.received_at == created - timedelta(days=settings.backfill_days + 1)
    assert any("before the mailbox could hold it" in f for f in clamped.flags)


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_suspicious_buyer_message_is_queued_but_never_drafted_automatically(
    fresh_database: Database, settings: Settings
) -> None:
    raw = (DEMO_DIR / "de-return_refund-thread-1.eml").read_bytes()
    raw = with_message_id(raw, f"{uuid.uuid4().hex}@spoof.test")
    forged = b"Authentication-Results: mx.example; dmarc=fail; dkim=fail header.d=amazon.de; spf=fail\r\n" + raw
    server = FakeMailServer()
    server.add("INBOX", forged, NOW)
    mailbox_id = _mailbox(fresh_database, settings)
    summary = _sync(fresh_database, settings, mailbox_id, server)
    assert summary.new == 1
    [message] = _messages(fresh_database, mailbox_id)
    assert message.suspicious and any(f.startswith("suspicious: ") for f in message.flags)
    assert message.conversation_id is not None and message.processed_at is not None  # queued, not drafted
    with fresh_database.transaction() as session:
        assert session.get_one(Conversation, message.conversation_id).awaiting_since is not None


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_mail_over_the_size_limit_keeps_its_headers_and_the_beginning_of_its_text(
    fresh_database: Database, settings: Settings
) -> None:
    raw = relay_mails(1)[0]
    head, _, body = raw.partition(b"\n\n") if b"\r\n\r\n" not in raw else raw.partition(b"\r\n\r\n")
    huge = head + b"\r\n\r\n" + body + b"\r\n" + b"filler line of text\r\n" * 80_000  # about 1.7 MB
    server = FakeMailServer()
    server.add("INBOX", huge, NOW)
    server.add("INBOX", relay_mails(1)[0], NOW)
    mailbox_id = _mailbox(fresh_database, settings)
    summary = _sync(fresh_database, settings.with_overrides(max_mail_mb=1), mailbox_id, server)
    assert (summary.new, summary.last_uid) == (2, 2)
    big, small = _messages(fresh_database, mailbox_id)
    assert any("more than the 1 MB limit" in f for f in big.flags) and not small.flags
    assert big.subject  # the headers were read
    with fresh_database.transaction() as session:
        kept = session.get_one(RawMail, big.raw_sha256)
        assert kept.size < 400_000 and kept.content.startswith(head[:40])

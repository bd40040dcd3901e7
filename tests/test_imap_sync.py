"""Syncing over IMAP: against a real Dovecot (both database backends) and, for the pure parts, a fake source."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.db import Database
from engine.db.models import Conversation, Mailbox, Message, OutboxItem, RawMail, Store, SyncRun
from engine.errors import InputError, MailboxError
from engine.mail import ParsedMail
from engine.services.mailboxes import add_mailbox, list_mailboxes, mailbox_view, update_mailbox
from engine.settings import Settings
from engine.sync import FakeMailServer, FakeSource, ImapConfig, ImapSource
from engine.sync.imap import imap_date, login_failure, uid_set
from engine.sync.runner import lag_alerts, sync_all, sync_mailbox
from tests.conftest import BACKENDS
from tests.servers import DovecotServer, dovecot_fixture, free_port, make_mailbox, relay_mails  # noqa: F401

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _messages(db: Database, mailbox_id: int | None = None) -> list[Message]:
    with db.transaction() as session:
        query = select(Message).order_by(Message.id)
        if mailbox_id is not None:
            query = query.where(Message.mailbox_id == mailbox_id)
        return list(session.scalars(query))


def _mailbox(db: Database, mailbox_id: int) -> Mailbox:
    with db.transaction() as session:
        return session.get_one(Mailbox, mailbox_id)


# ---- real Dovecot ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_first_sync_backfills_then_fetches_only_new_mail(
    fresh_database: Database, settings: Settings, dovecot: DovecotServer
) -> None:
    user = dovecot.new_user()
    dovecot.append(user, relay_mails(5))
    settings = settings.with_overrides(sync_batch_size=2)
    mailbox_id = make_mailbox(fresh_database, settings, dovecot, user)

    first = sync_mailbox(fresh_database, mailbox_id, settings)
    assert (first.status, first.fetched, first.new, first.duplicates) == ("ok", 5, 5, 0)
    assert first.last_uid == 5

    dovecot.append(user, relay_mails(3))
    second = sync_mailbox(fresh_database, mailbox_id, settings)
    assert (second.status, second.fetched, second.new) == ("ok", 3, 3)
    third = sync_mailbox(fresh_database, mailbox_id, settings)
    assert (third.status, third.fetched) == ("ok", 0)

    assert len(_messages(fresh_database, mailbox_id)) == 8
    assert all(m.source and m.source.startswith("imap:") for m in _messages(fresh_database))
    assert dovecot.seen_flags(user) == [False] * 8  # BODY.PEEK and EXAMINE: nothing marked read
    mailbox = _mailbox(fresh_database, mailbox_id)
    assert mailbox.last_uid == 8 and mailbox.uidvalidity is not None
    assert mailbox.last_synced_at is not None and mailbox.newest_mail_at is not None
    assert mailbox.last_error_code is None
    with fresh_database.transaction() as session:
        runs = list(session.scalars(select(SyncRun).where(SyncRun.mailbox_id == mailbox_id).order_by(SyncRun.id)))
    assert [(r.kind, r.status, r.fetched, r.new) for r in runs] == [
        ("imap", "ok", 5, 5),
        ("imap", "ok", 3, 3),
        ("imap", "ok", 0, 0),
    ]
    assert all(r.finished_at is not None and r.finished_at >= r.started_at for r in runs)


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_uidvalidity_change_rescans_without_duplicates(
    fresh_database: Database, settings: Settings, dovecot: DovecotServer
) -> None:
    user = dovecot.new_user()
    dovecot.create_folder(user, "Amazon")
    dovecot.append(user, relay_mails(4), folder="Amazon")
    mailbox_id = make_mailbox(fresh_database, settings, dovecot, user, folder="Amazon")
    assert sync_mailbox(fresh_database, mailbox_id, settings).new == 4
    validity = _mailbox(fresh_database, mailbox_id).uidvalidity
    time.sleep(1.05)  # Dovecot derives UIDVALIDITY from the clock (seconds)

    dovecot.recreate_folder(user, "Amazon")
    dovecot.append(user, relay_mails(1), folder="Amazon")
    rescan = sync_mailbox(fresh_database, mailbox_id, settings)

    assert rescan.rescanned
    assert (rescan.status, rescan.fetched, rescan.new, rescan.duplicates) == ("ok", 5, 1, 4)
    assert [e["code"] for e in rescan.errors] == ["uidvalidity_changed"]
    assert len(_messages(fresh_database, mailbox_id)) == 5
    mailbox = _mailbox(fresh_database, mailbox_id)
    assert mailbox.uidvalidity != validity and mailbox.last_uid == 5


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_wrong_password_is_coded_and_the_other_mailbox_still_syncs(
    fresh_database: Database, settings: Settings, dovecot: DovecotServer
) -> None:
    bad_user, good_user = dovecot.new_user(), dovecot.new_user()
    dovecot.append(bad_user, relay_mails(2))
    dovecot.append(good_user, relay_mails(3))
    bad = make_mailbox(fresh_database, settings, dovecot, bad_user, password="wrong-password")
    good = make_mailbox(fresh_database, settings, dovecot, good_user, store="Second Store")

    summaries = {s.mailbox_id: s for s in sync_all(fresh_database, settings)}

    assert summaries[bad].status == "error" and summaries[bad].error_code == "auth_failed"
    assert (summaries[good].status, summaries[good].new) == ("ok", 3)
    failed = _mailbox(fresh_database, bad)
    assert failed.last_error_code == "auth_failed"
    assert failed.last_error and "Settings → Mailboxes" in failed.last_error
    assert "wrong-password" not in failed.last_error
    assert failed.last_uid == 0 and not _messages(fresh_database, bad)

    with fresh_database.transaction() as session:
        update_mailbox(session, settings, bad, password=bad_user.password)
    fixed = sync_mailbox(fresh_database, bad, settings)
    assert (fixed.status, fixed.new) == ("ok", 2)
    assert _mailbox(fresh_database, bad).last_error_code is None


@pytest.mark.parametrize(
    ("security", "port_of", "code"),
    [("none", "closed", "unreachable"), ("ssl", "dovecot", "tls_failed"), ("starttls", "dovecot", "tls_failed")],
)
def test_connection_failures_have_distinct_codes(
    database: Database, settings: Settings, dovecot: DovecotServer, security: str, port_of: str, code: str
) -> None:
    port = free_port() if port_of == "closed" else dovecot.port
    config = ImapConfig("127.0.0.1", port, security, "nobody", "x", timeout=5)
    with pytest.raises(MailboxError) as caught:
        ImapSource(config).open()
    assert caught.value.code == code
    assert str(port) in str(caught.value)


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_unreachable_mailbox_is_recorded_on_the_run_and_mailbox(fresh_database: Database, settings: Settings) -> None:
    with fresh_database.transaction() as session:
        store = Store(name="Closed Port", allow_list=[], marketplaces=[])
        session.add(store)
        session.flush()
        mailbox = add_mailbox(
            session,
            settings,
            store,
            name="main",
            imap_host="127.0.0.1",
            imap_port=free_port(),
            imap_security="none",
            username="u",
            password="p",
        )
        mailbox_id = mailbox.id
    summary = sync_mailbox(fresh_database, mailbox_id, settings)
    assert summary.status == "error" and summary.error_code == "unreachable"
    with fresh_database.transaction() as session:
        run = session.get_one(SyncRun, summary.run_id)
        assert run.status == "error" and run.errors[0]["code"] == "unreachable"
        assert "check the host and port" in run.errors[0]["message"].lower()
        assert session.get_one(Mailbox, mailbox_id).last_error_code == "unreachable"


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_unparsable_mail_is_kept_raw_and_the_run_continues(
    fresh_database: Database, settings: Settings, dovecot: DovecotServer
) -> None:
    user = dovecot.new_user()
    garbage = b"this is not a mail, only a line of text\r\n"
    dovecot.append(user, [relay_mails(1)[0], garbage, relay_mails(1)[0]])
    mailbox_id = make_mailbox(fresh_database, settings, dovecot, user)

    summary = sync_mailbox(fresh_database, mailbox_id, settings)

    assert (summary.status, summary.fetched, summary.new, summary.unparsed) == ("partial", 3, 2, 1)
    assert [e["code"] for e in summary.errors] == ["unparsed"]
    unparsed = [m for m in _messages(fresh_database) if m.kind == "unparsed"]
    assert len(unparsed) == 1 and unparsed[0].parse_error
    with fresh_database.transaction() as session:
        raw = session.get_one(RawMail, unparsed[0].raw_sha256)
        assert raw.content.replace(b"\r\n", b"\n") == garbage.replace(b"\r\n", b"\n")
    assert _mailbox(fresh_database, mailbox_id).last_uid == 3


def test_idle_reports_new_mail_and_times_out(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    with ImapSource(ImapConfig(dovecot.host, dovecot.port, "none", user.name, user.password)) as source:
        source.select_folder("INBOX")
        assert source.supports_idle
        started = time.monotonic()
        assert source.idle(0.3) is False
        assert 0.25 < time.monotonic() - started < 2
        threading.Timer(0.2, dovecot.append, args=(user, relay_mails(1))).start()
        assert source.idle(5) is True
        assert source.search_uids(after_uid=0, since=None) == [1]  # the session is still usable


def test_sent_folder_lookup_and_append(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    with ImapSource(ImapConfig(dovecot.host, dovecot.port, "none", user.name, user.password)) as source:
        source.append("Sent", b"Message-ID: <reply.1@shop.example>\r\nSubject: Re: x\r\n\r\nHello\r\n")
        assert source.contains_message_id("Sent", "reply.1@shop.example")
        assert not source.contains_message_id("Sent", "reply.2@shop.example")
        source.append("Sent Replies", b"Message-ID: <reply.3@shop.example>\r\n\r\nHi\r\n")  # created on demand
        assert source.contains_message_id("Sent Replies", "<reply.3@shop.example>")
        with pytest.raises(MailboxError) as caught:
            source.contains_message_id("No Such Folder", "reply.1@shop.example")
        assert caught.value.code == "folder_missing"


# ---- fake source: windows, lag, pure helpers -------------------------------------------------------


def _fake_mailbox(db: Database, settings: Settings) -> int:
    with db.transaction() as session:
        store = Store(name=f"Fake {uuid.uuid4().hex[:6]}", allow_list=[], marketplaces=[])
        session.add(store)
        session.flush()
        return add_mailbox(session, settings, store, name="fake", imap_host="imap.fake", username="u", password="p").id


@pytest.mark.parametrize(("backfill_days", "expected_new"), [(90, 2), (0, 3)])
def test_first_contact_reads_only_the_backfill_window(
    fresh_database: Database, settings: Settings, backfill_days: int, expected_new: int
) -> None:
    server = FakeMailServer()
    mails = relay_mails(3)
    server.add("INBOX", mails[0], NOW - timedelta(days=200))
    server.add("INBOX", mails[1], NOW - timedelta(days=10))
    server.add("INBOX", mails[2], NOW - timedelta(hours=1))
    settings = settings.with_overrides(backfill_days=backfill_days)
    mailbox_id = _fake_mailbox(fresh_database, settings)

    summary = sync_mailbox(
        fresh_database, mailbox_id, settings, source_factory=lambda _: FakeSource(server), now=lambda: NOW
    )

    assert summary.new == expected_new and summary.last_uid == 3
    server.add("INBOX", relay_mails(1)[0], NOW)
    again = sync_mailbox(
        fresh_database, mailbox_id, settings, source_factory=lambda _: FakeSource(server), now=lambda: NOW
    )
    assert again.new == 1 and again.last_uid == 4


def test_empty_window_starts_from_the_current_uid(fresh_database: Database, settings: Settings) -> None:
    server = FakeMailServer()
    server.add("INBOX", relay_mails(1)[0], NOW - timedelta(days=400))
    mailbox_id = _fake_mailbox(fresh_database, settings)
    summary = sync_mailbox(
        fresh_database, mailbox_id, settings, source_factory=lambda _: FakeSource(server), now=lambda: NOW
    )
    assert summary.new == 0 and _mailbox(fresh_database, mailbox_id).last_uid == 1


def test_lag_alerts_flag_stale_erroring_and_never_synced(fresh_database: Database, settings: Settings) -> None:
    server = FakeMailServer()
    server.add("INBOX", relay_mails(1)[0], NOW)
    fresh_id = _fake_mailbox(fresh_database, settings)
    sync_mailbox(fresh_database, fresh_id, settings, source_factory=lambda _: FakeSource(server), now=lambda: NOW)
    with fresh_database.transaction() as session:
        store = session.get_one(Mailbox, fresh_id).store
        stale = add_mailbox(session, settings, store, name="stale", imap_host="h", username="u", password="p")
        stale.last_synced_at = NOW - timedelta(hours=2)
        broken = add_mailbox(session, settings, store, name="broken", imap_host="h", username="u", password="p")
        broken.last_synced_at, broken.last_error_code, broken.last_error = NOW, "auth_failed", "Login refused."
        add_mailbox(session, settings, store, name="never", imap_host="h", username="u", password="p")
        off = add_mailbox(session, settings, store, name="off", imap_host="h", username="u", password="p")
        off.enabled = False
    with fresh_database.transaction() as session:
        alerts = {lag.name: lag for lag in lag_alerts(session, NOW + timedelta(minutes=5))}
    assert set(alerts) == {"stale", "broken", "never"}
    assert alerts["stale"].sync_age == timedelta(hours=2, minutes=5)
    assert alerts["broken"].error_code == "auth_failed"


def test_mailbox_service_round_trip(fresh_database: Database, settings: Settings) -> None:
    with fresh_database.transaction() as session:
        store = Store(name="Views", allow_list=[], marketplaces=[])
        session.add(store)
        session.flush()
        mailbox = add_mailbox(
            session,
            settings,
            store,
            name="main",
            imap_host="imap.example",
            username="me",
            password="app-password-1234",
            smtp_host="smtp.example",
        )
        assert mailbox.password_encrypted and "app-password" not in mailbox.password_encrypted
        mailbox.uidvalidity, mailbox.last_uid = 7, 40
        view = mailbox_view(session, settings, mailbox, NOW)
        assert view.password == "set, ends ••••34"
        assert "app-password-1234" not in repr(view)
        assert view.smtp == "me@smtp.example:587 (starttls)"
        assert view.outbox == {"approved": 0, "sending": 0, "sent": 0, "failed": 0, "unknown": 0, "blocked": 0}
        with pytest.raises(InputError, match="already has a mailbox"):
            add_mailbox(session, settings, store, name="main", imap_host="h", username="u", password="p")
        with pytest.raises(InputError, match="ssl, starttls or none"):
            update_mailbox(session, settings, mailbox.id, imap_security="tls")
        update_mailbox(session, settings, mailbox.id, sent_folder="Gesendet")
        assert (mailbox.uidvalidity, mailbox.last_uid) == (7, 40)  # same mail: the mark stays
        update_mailbox(session, settings, mailbox.id, folder="Amazon")
        assert (mailbox.uidvalidity, mailbox.last_uid) == (None, 0)  # other mail: start over
        views = list_mailboxes(session, settings, now=NOW)
        assert [v.name for v in views] == ["main"] and views[0].alert == "main: not synced yet."
        assert session.scalar(select(func.count()).select_from(OutboxItem)) == 0


@pytest.mark.parametrize(
    ("uids", "expected"),
    [([1], "1"), ([3, 1, 2], "1:3"), ([1, 2, 3, 7, 9, 10], "1:3,7,9:10"), ([5, 5, 6], "5:6")],
)
def test_uid_set(uids: list[int], expected: str) -> None:
    assert uid_set(uids) == expected


@pytest.mark.parametrize(("day", "text"), [(date(2026, 1, 5), "5-Jan-2026"), (date(2025, 12, 31), "31-Dec-2025")])
def test_imap_date(day: date, text: str) -> None:
    assert imap_date(day) == text


@pytest.mark.parametrize(
    ("server_text", "code"),
    [
        ("b'[AUTHENTICATIONFAILED] Authentication failed.'", "auth_failed"),
        ("[AUTHENTICATIONFAILED] Invalid credentials (Failure)", "auth_failed"),
        ("[EXPIRED] Password expired", "auth_expired"),
        ("[ALERT] Application-specific password required: https://support.google.com/...", "app_password_required"),
        ("[PRIVACYREQUIRED] Plaintext authentication disallowed", "login_disabled"),
        ("LOGIN failed.", "auth_failed"),
    ],
)
def test_login_failures_are_told_apart(server_text: str, code: str) -> None:
    error = login_failure(server_text, ImapConfig("imap.example", 993, "ssl", "me", "secret"))
    assert error.code == code
    assert ("secret" not in str(error) and "Settings → Mailboxes" in str(error)) or code == "login_disabled"


def test_unknown_host_is_its_own_code() -> None:
    with pytest.raises(MailboxError) as caught:
        ImapSource(ImapConfig("no-such-host.invalid", 993, "ssl", "me", "x", timeout=3)).open()
    assert caught.value.code == "host_unknown"


def test_a_crashing_parser_still_keeps_the_mail_raw(
    fresh_database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.services.inbox as inbox

    server = FakeMailServer()
    poison, good = b"Subject: poison\r\nFrom: a@b.example\r\n\r\nboom\r\n", relay_mails(1)[0]
    server.add("INBOX", poison, NOW)
    server.add("INBOX", good, NOW)
    real_parse_mail = inbox.parse_mail

    def crash_on_poison(raw: bytes) -> ParsedMail:
        if raw == poison:
            raise ValueError("parser bug")
        return real_parse_mail(raw)

    monkeypatch.setattr(inbox, "parse_mail", crash_on_poison)
    mailbox_id = _fake_mailbox(fresh_database, settings)
    summary = sync_mailbox(
        fresh_database, mailbox_id, settings, source_factory=lambda _: FakeSource(server), now=lambda: NOW
    )
    assert (summary.status, summary.new, summary.unparsed, summary.last_uid) == ("partial", 1, 1, 2)
    kept = [m for m in _messages(fresh_database) if m.kind == "unparsed"]
    assert len(kept) == 1 and kept[0].parse_error == "parser crashed: ValueError: parser bug"
    with fresh_database.transaction() as session:
        assert session.get_one(RawMail, kept[0].raw_sha256).content == poison


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_crash_midway_through_storing_a_batch_leaves_no_trace_of_it(
    fresh_database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.services.inbox as inbox

    server = FakeMailServer()
    mails = relay_mails(4)
    for raw in mails:
        server.add("INBOX", raw, NOW)
    real_new_row = inbox._new_row

    def crash_after_the_third(store: Store, mail: Any, *args: Any) -> Message:
        row = real_new_row(store, mail, *args)  # the thread is opened or updated already
        if mail.mail.raw == mails[2]:
            raise ValueError("storage bug")
        return row

    monkeypatch.setattr(inbox, "_new_row", crash_after_the_third)
    mailbox_id = _fake_mailbox(fresh_database, settings)
    summary = sync_mailbox(
        fresh_database, mailbox_id, settings, source_factory=lambda _: FakeSource(server), now=lambda: NOW
    )

    assert (summary.status, summary.fetched, summary.new, summary.unparsed) == ("partial", 4, 3, 1)
    stored = _messages(fresh_database, mailbox_id)
    assert [m.source.rsplit(":", 1)[1] for m in stored if m.source] == ["1", "2", "3", "4"]  # each once
    assert (
        stored[2].kind == "unparsed"
        and stored[2].parse_error == "could not be stored as parsed (ValueError: storage bug)"
    )
    with fresh_database.transaction() as session:
        threads = list(session.scalars(select(Conversation)))
        messages = {t.id: len(t.messages) for t in threads}
    assert sum(messages.values()) == 3 and all(messages.values())  # no thread left behind by the crashed try


def test_cli_adds_a_mailbox_from_an_env_password_and_syncs_once(
    fresh_database: Database,
    settings: Settings,
    dovecot: DovecotServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse

    from engine.cli_workers import register
    from engine.services.stores import ensure_store

    parser = argparse.ArgumentParser(prog="replydesk")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: object, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        command.set_defaults(handler=handler)
        return command

    register(add)
    settings = settings.with_overrides(database_url=fresh_database.url)
    with fresh_database.transaction() as session:
        ensure_store(session, "Northwind Gear")
    user = dovecot.new_user()
    dovecot.append(user, relay_mails(2))
    monkeypatch.setenv("SELLER_IMAP_PASSWORD", user.password)

    args = parser.parse_args(
        [
            "mailbox-add",
            "Northwind Gear",
            "--host",
            dovecot.host,
            "--port",
            str(dovecot.port),
            "--security",
            "none",
            "--user",
            user.name,
            "--password-env",
            "SELLER_IMAP_PASSWORD",
        ]
    )
    assert args.handler(args, settings) == 0
    args = parser.parse_args(["sync", "--once", "--store", "Northwind Gear"])
    assert args.handler(args, settings) == 0

    out = capsys.readouterr().out
    assert f"mailbox {user.name}" in out and "2 new" in out
    assert user.password not in out
    with pytest.raises(SystemExit):
        parser.parse_args(["mailbox-add", "Northwind Gear", "--host", "h", "--user", "u", "--password", "p"])

"""Faults on the real servers: a sync killed mid-batch, Dovecot restarted mid-sync, an SMTP answer lost
after DATA, and two workers on one mailbox. Nothing is lost, nothing is stored or sent twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from engine.db import Database
from engine.db.models import Mailbox, Message, OutboxItem, OutboxState, SyncRun
from engine.send.worker import send_pending
from engine.settings import Settings
from engine.sync.imap import FetchedMail
from engine.sync.runner import sync_mailbox
from tests.conftest import BACKENDS, REPO_ROOT
from tests.servers import (  # noqa: F401
    DovecotServer,
    SmtpCapture,
    dovecot_fixture,
    make_mailbox,
    queue_reply,
    relay_mails,
    smtp_server_fixture,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

SYNC_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from engine.db import Database
    from engine.settings import Settings
    from engine.sync.runner import sync_mailbox

    url, mailbox_id, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    settings = Settings(secret_key=key, sync_batch_size=3)

    def slowly(mail):
        print(mail.uid, flush=True)
        time.sleep(0.05)

    sync_mailbox(Database(url), mailbox_id, settings, on_mail=slowly)
    print("done", flush=True)
    """
)


def _state(db: Database, mailbox_id: int) -> tuple[int, list[str]]:
    with db.transaction() as session:
        mailbox = session.get_one(Mailbox, mailbox_id)
        keys = list(session.scalars(select(Message.dedupe_key).where(Message.mailbox_id == mailbox_id)))
        return mailbox.last_uid, keys


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_sigkill_mid_batch_loses_and_duplicates_nothing(
    fresh_database: Database, settings: Settings, dovecot: DovecotServer, tmp_path: Path
) -> None:
    settings = settings.with_overrides(secret_key=Fernet.generate_key().decode(), sync_batch_size=3)
    user = dovecot.new_user()
    dovecot.append(user, relay_mails(20))
    mailbox_id = make_mailbox(fresh_database, settings, dovecot, user)
    script = tmp_path / "sync_slowly.py"
    script.write_text(SYNC_SCRIPT)
    url = fresh_database.engine.url.render_as_string(hide_password=False)

    process = subprocess.Popen(
        [sys.executable, str(script), url, str(mailbox_id), settings.secret_key or ""],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    seen = [process.stdout.readline().strip() for _ in range(8)]  # UID 8: inside the third batch (7–9)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert seen == [str(uid) for uid in range(1, 9)]

    last_uid, keys = _state(fresh_database, mailbox_id)
    assert last_uid == 6 and len(keys) == 6  # two whole batches, nothing of the killed one

    rerun = sync_mailbox(fresh_database, mailbox_id, settings)
    assert (rerun.status, rerun.fetched, rerun.new, rerun.duplicates) == ("ok", 14, 14, 0)
    last_uid, keys = _state(fresh_database, mailbox_id)
    assert last_uid == 20 and len(keys) == len(set(keys)) == 20
    with fresh_database.transaction() as session:  # the killed run was closed when the next one started
        runs = session.scalars(select(SyncRun).where(SyncRun.mailbox_id == mailbox_id).order_by(SyncRun.id)).all()
        assert [r.status for r in runs] == ["interrupted", "ok"] and all(r.finished_at for r in runs)


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_dovecot_restart_mid_sync_then_the_next_run_completes(
    fresh_database: Database, settings: Settings, dovecot: DovecotServer
) -> None:
    settings = settings.with_overrides(sync_batch_size=2)
    user = dovecot.new_user()
    dovecot.append(user, relay_mails(6))
    mailbox_id = make_mailbox(fresh_database, settings, dovecot, user)
    restarted: list[int] = []

    def restart_once(last_uid: int) -> None:
        if not restarted:
            restarted.append(last_uid)
            dovecot.restart()

    broken = sync_mailbox(fresh_database, mailbox_id, settings, on_batch=restart_once)
    assert broken.status == "error" and broken.error_code == "connection_lost"
    assert broken.new == 2 and _state(fresh_database, mailbox_id)[0] == 2
    with fresh_database.transaction() as session:
        assert session.get_one(Mailbox, mailbox_id).last_error_code == "connection_lost"

    again = sync_mailbox(fresh_database, mailbox_id, settings)
    assert (again.status, again.new, again.duplicates) == ("ok", 4, 0)
    last_uid, keys = _state(fresh_database, mailbox_id)
    assert last_uid == 6 and len(keys) == len(set(keys)) == 6


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
@pytest.mark.parametrize("provider_files_sent", [False, True])
def test_smtp_answer_lost_after_data_never_sends_twice(
    fresh_database: Database,
    settings: Settings,
    dovecot: DovecotServer,
    smtp_server: SmtpCapture,
    provider_files_sent: bool,
) -> None:
    user = dovecot.new_user()
    mailbox_id = make_mailbox(fresh_database, settings, dovecot, user, smtp=smtp_server)
    item_id = queue_reply(fresh_database, mailbox_id)
    smtp_server.replies.append("drop")
    if provider_files_sent:  # as Gmail and Outlook do with mail submitted over SMTP
        with fresh_database.transaction() as session:
            message_id = session.get_one(OutboxItem, item_id).message_id
        dovecot.append(user, [f"Message-ID: <{message_id}>\r\nSubject: Re\r\n\r\nHallo\r\n".encode()], folder="Sent")

    counts = send_pending(fresh_database, settings, now=lambda: NOW)

    assert len(smtp_server.received) == 1  # it did arrive; only the "250" was lost
    with fresh_database.transaction() as session:
        item = session.get_one(OutboxItem, item_id)
        if provider_files_sent:
            assert counts.sent == 1 and item.state == OutboxState.SENT
        else:
            assert counts.unknown == 1 and item.state == OutboxState.UNKNOWN
            assert item.last_error and "may have been delivered" in item.last_error
    for later in (NOW + timedelta(hours=1), NOW + timedelta(days=1)):
        send_pending(fresh_database, settings, now=lambda at=later: at)  # type: ignore[misc]
    assert len(smtp_server.received) == 1


@pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
def test_two_workers_on_one_mailbox_store_each_mail_once(
    fresh_database: Database, settings: Settings, dovecot: DovecotServer
) -> None:
    settings = settings.with_overrides(sync_batch_size=2)
    user = dovecot.new_user()
    dovecot.append(user, relay_mails(12))
    mailbox_id = make_mailbox(fresh_database, settings, dovecot, user)
    fetched: Counter[int] = Counter()
    lock = threading.Lock()

    def slowly(mail: FetchedMail) -> None:
        with lock:
            fetched[mail.uid] += 1
        time.sleep(0.02)

    summaries = []

    def work() -> None:
        summaries.append(sync_mailbox(fresh_database, mailbox_id, settings, on_mail=slowly))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(fetched) == set(range(1, 13)) and max(fetched.values()) == 1  # no batch processed twice
    assert sum(s.new for s in summaries) == 12 and sum(s.duplicates for s in summaries) == 0
    with fresh_database.transaction() as session:
        count = session.scalar(select(func.count()).select_from(Message).where(Message.mailbox_id == mailbox_id))
        assert count == 12 and session.get_one(Mailbox, mailbox_id).last_uid == 12


WORKER_SCRIPT = textwrap.dedent(
    """
    import argparse, sys
    from engine.cli_workers import register
    from engine.settings import Settings

    parser = argparse.ArgumentParser(prog="replydesk")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, handler, help_text):
        command = sub.add_parser(name, help=help_text)
        command.set_defaults(handler=handler)
        return command

    register(add)
    args = parser.parse_args(sys.argv[1:])
    sys.exit(args.handler(args, Settings.from_env()))
    """
)


@pytest.mark.parametrize("fresh_database", ["sqlite"], indirect=True)
def test_worker_loop_stops_cleanly_on_sigterm(fresh_database: Database, settings: Settings, tmp_path: Path) -> None:
    settings = settings.with_overrides(secret_key=Fernet.generate_key().decode())
    make_mailbox(fresh_database, settings)  # IMAP on a closed port: every pass reports an error line
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "REPLYDESK_DATABASE_URL": fresh_database.url,
        "REPLYDESK_SECRET_KEY": settings.secret_key or "",
        "REPLYDESK_DATA_DIR": str(tmp_path / "data"),
        "REPLYDESK_SYNC_INTERVAL": "1",
    }
    process = subprocess.Popen(
        [sys.executable, str(script), "worker"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    first = process.stderr.readline()  # the loop is running (signal handlers are installed before it starts)
    assert "unreachable" in first or "Cannot connect" in first
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    assert "stopping after the current step (SIGTERM)" in process.stderr.read()

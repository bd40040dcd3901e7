"""IMAP IDLE wakes the sync loop when mail arrives (real Dovecot); the polling interval stays the fallback."""

from __future__ import annotations

import threading
import time

from engine.cli_workers import _pause
from engine.db import Database
from engine.settings import Settings
from engine.sync.idle import IdleWatcher, watch_targets
from tests.servers import DovecotServer, dovecot_fixture, make_mailbox, relay_mails  # noqa: F401


def _wait_for(condition, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_new_mail_wakes_the_watcher(dovecot: DovecotServer, fresh_database: Database, settings: Settings) -> None:
    user = dovecot.new_user()
    mailbox_id = make_mailbox(fresh_database, settings, dovecot, user)
    targets = watch_targets(fresh_database, settings)
    assert [t.mailbox_id for t in targets] == [mailbox_id]
    watcher = IdleWatcher(targets, renew_seconds=2, retry_pause=0.2).start()
    try:
        assert _wait_for(lambda: mailbox_id in watcher.watching), "the watcher never entered IDLE"
        time.sleep(0.3)
        assert not watcher.wake.is_set()
        dovecot.append(user, relay_mails(1))
        assert watcher.wake.wait(10), "new mail did not wake the watcher"
    finally:
        watcher.stop()


def test_a_dead_server_is_retried_without_waking(fresh_database: Database, settings: Settings) -> None:
    make_mailbox(fresh_database, settings)  # IMAP side points at a closed port
    watcher = IdleWatcher(watch_targets(fresh_database, settings), retry_pause=0.1).start()
    try:
        time.sleep(0.5)
        assert not watcher.wake.is_set() and not watcher.watching
    finally:
        watcher.stop()


def test_pause_ends_early_on_wake_and_on_stop() -> None:
    stop, wake = threading.Event(), threading.Event()
    threading.Timer(0.2, wake.set).start()
    started = time.monotonic()
    assert _pause(stop, wake, 30) is False
    assert time.monotonic() - started < 5 and not wake.is_set()
    threading.Timer(0.2, stop.set).start()
    assert _pause(stop, wake, 30) is True
    started = time.monotonic()
    assert _pause(threading.Event(), None, 0.3) is False
    assert time.monotonic() - started >= 0.29

"""IMAP IDLE: wake the sync loop as soon as new mail arrives, where the server supports it.

One thread per enabled mailbox holds an IDLE session on its folder and sets a shared event when the server
reports new mail; the worker loop waits on that event as well as on its polling interval, so the interval
stays the fallback for servers without IDLE and for any trouble here. Errors are logged and retried after
a pause; they never stop the worker (the regular sync reports mailbox errors to the user).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from engine.db.models import Mailbox
from engine.db.session import Database
from engine.errors import ReplyDeskError
from engine.settings import Settings
from engine.sync.imap import ImapConfig, ImapSource, MessageSource
from engine.sync.runner import imap_config

log = logging.getLogger(__name__)

# RFC 2177: clients should re-issue IDLE at least every 29 minutes; servers may drop a quiet session sooner.
IDLE_RENEW_SECONDS = 9 * 60
RETRY_PAUSE_SECONDS = 60.0


@dataclass(frozen=True)
class WatchTarget:
    mailbox_id: int
    folder: str
    config: ImapConfig


def watch_targets(db: Database, settings: Settings) -> list[WatchTarget]:
    with db.transaction() as session:
        mailboxes = session.scalars(select(Mailbox).where(Mailbox.enabled.is_(True)).order_by(Mailbox.id)).all()
        targets = []
        for mailbox in mailboxes:
            try:
                targets.append(WatchTarget(mailbox.id, mailbox.folder, imap_config(mailbox, settings)))
            except ReplyDeskError as exc:  # unreadable credentials: the regular sync reports it
                log.warning("mailbox %s not watched: %s", mailbox.id, exc)
        return targets


class IdleWatcher:
    """Sets `wake` whenever a watched folder receives mail. `stop()` ends the threads (daemon threads)."""

    def __init__(
        self,
        targets: list[WatchTarget],
        *,
        source_factory: Callable[[ImapConfig], MessageSource] = ImapSource,
        renew_seconds: float = IDLE_RENEW_SECONDS,
        retry_pause: float = RETRY_PAUSE_SECONDS,
    ) -> None:
        self.wake = threading.Event()
        self._stopping = threading.Event()
        self._source_factory = source_factory
        self._renew = renew_seconds
        self._retry_pause = retry_pause
        self._threads = [
            threading.Thread(target=self._watch, args=(t,), name=f"idle-{t.mailbox_id}", daemon=True) for t in targets
        ]
        self.watching: set[int] = set()  # mailboxes whose server supports IDLE

    def start(self) -> IdleWatcher:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()

    def _watch(self, target: WatchTarget) -> None:
        while not self._stopping.is_set():
            try:
                with self._source_factory(target.config) as source:
                    source.select_folder(target.folder)
                    if not getattr(source, "supports_idle", False):
                        log.info("mailbox %s: no IDLE on the server; polling only", target.mailbox_id)
                        return
                    self.watching.add(target.mailbox_id)
                    while not self._stopping.is_set():
                        if source.idle(self._renew):  # type: ignore[attr-defined]
                            self.wake.set()
            except ReplyDeskError as exc:
                log.warning("mailbox %s: IDLE interrupted (%s); retrying", target.mailbox_id, exc)
            except Exception:
                log.exception("mailbox %s: IDLE failed; retrying", target.mailbox_id)
            finally:
                self.watching.discard(target.mailbox_id)
            self._stopping.wait(self._retry_pause)

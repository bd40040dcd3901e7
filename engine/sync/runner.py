"""Syncing mailboxes: new mail in, batch by batch, without ever losing or duplicating a mail.

A run first claims the mailbox (`Mailbox.sync_owner`, renewed with every batch): a second worker finds
it claimed by a live process and skips it; a claim left by a dead process (killed, crashed) is taken
over, and that process's run, still `running`, is closed as `interrupted`. Mails are fetched and parsed
outside any transaction (`engine.sync.batch`); each batch's writes are one short transaction that stores
the mails AND moves the mailbox's high-water mark (`last_uid`), so a process killed at any moment leaves
either the whole batch or none of it. Mail that cannot be stored is kept `unparsed` or quarantined and
the mark moves on: no mail blocks a mailbox. A changed UIDVALIDITY (the folder was recreated) resets the
mark and re-scans; `store_mails` deduplicates by Message-ID. Every run leaves a `SyncRun` that ends
finished; every failure a coded error on the mailbox that tells the user what to do. One mailbox
failing never stops the others.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from engine import crypto
from engine.db.base import utcnow
from engine.db.models import Mailbox, Store, SyncRun
from engine.db.session import Database
from engine.errors import ConfigError, InputError, MailboxError
from engine.integrations.events import emit_sync_failed
from engine.settings import Settings
from engine.sync.batch import (
    BATCH_BYTES,
    SYNC_LEASE,
    BatchCounts,
    FetchLimits,
    fetch_group,
    lock_mailbox,
    size_groups,
    store_group,
)
from engine.sync.imap import FetchedMail, FolderState, ImapConfig, ImapSource, MessageSource

__all__ = [
    "LAG_THRESHOLD",
    "MailboxLag",
    "SourceFactory",
    "SyncSummary",
    "holder_alive",
    "imap_config",
    "lag_alerts",
    "mailbox_lag",
    "sync_all",
    "sync_mailbox",
]

log = logging.getLogger(__name__)

SourceFactory = Callable[[ImapConfig], MessageSource]
LAG_THRESHOLD = timedelta(hours=1)
CREDENTIALS_UNREADABLE = "credentials_unreadable"
INTERNAL = "internal"
DATABASE = "database"
INTERRUPTED = "interrupted"
# Claims this process holds right now: a claim by this process that is not among them was left by a
# run that failed without releasing it (the database went away), so it is free to take.
_ACTIVE_CLAIMS: set[str] = set()
_ACTIVE_LOCK = threading.Lock()
_MAX_RUN_ERRORS = 200


def default_source_factory(config: ImapConfig) -> MessageSource:
    return ImapSource(config)


@dataclass
class SyncSummary:
    mailbox_id: int
    mailbox: str = ""
    run_id: int | None = None
    status: str = "running"  # ok, partial (some mails unparsed), error, skipped (another worker holds it)
    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    unparsed: int = 0
    quarantined: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    last_uid: int = 0
    rescanned: bool = False  # UIDVALIDITY changed: the folder was read again from the start

    @property
    def error_code(self) -> str | None:
        return next((e["code"] for e in self.errors if e.get("fatal")), None)

    def line(self) -> str:
        text = (
            f"{self.mailbox}: {self.status}, {self.fetched} fetched, {self.new} new, "
            f"{self.duplicates} already stored, {self.unparsed} unparsed"
        )
        if self.quarantined:
            text += f", {self.quarantined} quarantined"
        fatal = [e["message"] for e in self.errors if e.get("fatal")]
        return text + (f" — {fatal[0]}" if fatal else "")


@dataclass(frozen=True)
class _Plan:
    """What one run needs from the mailbox row, read once."""

    store_id: int
    name: str
    folder: str
    config: ImapConfig
    uidvalidity: int | None
    owner: str
    created_at: datetime


def imap_config(mailbox: Mailbox, settings: Settings, *, timeout: float = 30.0) -> ImapConfig:
    return ImapConfig(
        host=mailbox.imap_host,
        port=mailbox.imap_port,
        security=mailbox.imap_security,
        username=mailbox.username,
        password=crypto.decrypt(settings, mailbox.password_encrypted),
        timeout=timeout,
        ca_file=str(settings.ca_file) if settings.ca_file else None,
    )


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def holder_alive(owner: str | None, lease_until: datetime | None, now: datetime) -> bool:
    """Whether the sync that claimed a mailbox may still be running. A claim past its lease is free; on
    this machine a claim whose process is gone is free at once (so a killed sync is taken over by the next)."""
    if not owner or lease_until is None or lease_until <= now:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine: trust the lease
    if int(pid_text) == os.getpid():
        with _ACTIVE_LOCK:
            return owner in _ACTIVE_CLAIMS
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # alive, owned by another user
    return True


def _backfill_since(settings: Settings, now: datetime) -> date | None:
    # 0 days means no window: the whole folder is read on first contact.
    return (now - timedelta(days=settings.backfill_days)).date() if settings.backfill_days > 0 else None


def _not_before(settings: Settings, created_at: datetime) -> datetime | None:
    """The oldest arrival date a mail of this mailbox can have: what the first sync's window reaches back
    to. None when the whole folder is read on first contact (any age is possible)."""
    if settings.backfill_days <= 0:
        return None
    return created_at - timedelta(days=settings.backfill_days + 1)  # a day's margin for time zones


def _source(mailbox_name: str, uidvalidity: int | None, mail: FetchedMail) -> str:
    return f"imap:{mailbox_name}:{uidvalidity}:{mail.uid}"


def _error(code: str, message: str, *, fatal: bool = False, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"code": code, "message": message, **extra}
    if fatal:
        entry["fatal"] = True
    return entry


def _begin(db: Database, mailbox_id: int, settings: Settings, summary: SyncSummary, now: datetime) -> _Plan | None:
    """Open the run's log row and claim the mailbox; close the runs of syncs that died. None: do not run."""
    owner = _new_owner()
    with db.transaction() as session:
        mailbox = lock_mailbox(session, mailbox_id)
        if mailbox is None:
            raise InputError(f"No mailbox with id {mailbox_id}. List mailboxes with `replydesk mailbox-list`.")
        summary.mailbox, summary.last_uid = mailbox.name, mailbox.last_uid
        claimed = holder_alive(mailbox.sync_owner, mailbox.sync_lease_until, now)
        if not claimed:
            interrupted = session.execute(
                update(SyncRun)
                .where(SyncRun.mailbox_id == mailbox.id, SyncRun.status == "running")
                .values(
                    status=INTERRUPTED,
                    finished_at=now,
                    errors=[
                        _error(
                            INTERRUPTED,
                            "The sync process stopped before this run finished (killed or crashed). Nothing "
                            "was lost: the next run continued where it stopped.",
                        )
                    ],
                )
            )
            closed = int(getattr(interrupted, "rowcount", 0) or 0)
            if closed:
                log.warning("%s: closed %s interrupted sync run(s)", mailbox.name, closed)
        run = SyncRun(kind="imap", store_id=mailbox.store_id, mailbox_id=mailbox.id, status="running", errors=[])
        session.add(run)
        session.flush()
        summary.run_id = run.id
        if claimed:
            summary.status = "skipped"  # another worker is syncing it right now
            return None
        try:
            config = imap_config(mailbox, settings)
        except ConfigError as exc:
            summary.errors.append(_error(CREDENTIALS_UNREADABLE, str(exc), fatal=True))
            return None
        mailbox.sync_owner, mailbox.sync_lease_until = owner, now + SYNC_LEASE
        with _ACTIVE_LOCK:
            _ACTIVE_CLAIMS.add(owner)
        return _Plan(
            mailbox.store_id,
            mailbox.name,
            mailbox.folder,
            config,
            mailbox.uidvalidity,
            owner,
            mailbox.created_at or now,
        )


def _prepare_folder(db: Database, mailbox_id: int, state: FolderState, owner: str, summary: SyncSummary) -> int | None:
    """Adopt the folder's UIDVALIDITY (resetting the mark when it changed); the UID to continue after."""
    with db.transaction() as session:
        row = lock_mailbox(session, mailbox_id)
        if row is None or row.sync_owner != owner:
            return None
        if row.uidvalidity != state.uidvalidity:
            if row.uidvalidity is not None:
                summary.rescanned = True
                summary.errors.append(
                    _error(
                        "uidvalidity_changed",
                        f"The folder was recreated on the server (UIDVALIDITY {row.uidvalidity} → "
                        f"{state.uidvalidity}); it is read again and mails already stored are skipped.",
                    )
                )
            row.uidvalidity, row.last_uid = state.uidvalidity, 0
        return row.last_uid


def _sync_chunk(
    db: Database,
    source: MessageSource,
    mailbox_id: int,
    plan: _Plan,
    state: FolderState,
    uids: Sequence[int],
    limits: FetchLimits,
    on_mail: Callable[[FetchedMail], None] | None,
) -> tuple[BatchCounts, int] | None:
    """Sizes, then fetch, parse and store group by group (each group's bytes bounded). None: stop."""
    sizes = {item.uid: item.size for item in source.fetch_sizes(uids)}
    counts, last_uid = BatchCounts(), 0
    groups = size_groups(uids, sizes, max_mail_bytes=limits.max_mail_bytes, budget=BATCH_BYTES)
    for group in groups:
        ready = fetch_group(
            source, group, sizes, limits, lambda mail: _source(plan.name, state.uidvalidity, mail), mailbox_id
        )
        outcome = store_group(db, mailbox_id, state, plan.owner, group, ready, on_mail)
        if outcome is None:
            return None
        counts.add(outcome[0])
        last_uid = outcome[1]
    return counts, last_uid


def _run(
    db: Database,
    mailbox_id: int,
    plan: _Plan,
    settings: Settings,
    summary: SyncSummary,
    source_factory: SourceFactory,
    now: datetime,
    on_mail: Callable[[FetchedMail], None] | None,
    on_batch: Callable[[int], None] | None,
) -> None:
    limits = FetchLimits(settings.max_mail_mb * 1024 * 1024, _not_before(settings, plan.created_at))
    with source_factory(plan.config) as source:
        state = source.select_folder(plan.folder)
        after_uid = _prepare_folder(db, mailbox_id, state, plan.owner, summary)
        if after_uid is None:
            summary.status = "skipped"
            return
        since = _backfill_since(settings, now) if after_uid == 0 else None
        uids = source.search_uids(after_uid=after_uid, since=since)
        if not uids and since is not None and state.uidnext:
            # First contact and nothing inside the window: start from here, older mail stays unread.
            with db.transaction() as session:
                row = lock_mailbox(session, mailbox_id)
                if row is not None and row.uidvalidity == state.uidvalidity and row.last_uid == 0:
                    row.last_uid = state.uidnext - 1
                    summary.last_uid = row.last_uid
        for chunk in _chunks(uids, max(1, settings.sync_batch_size)):
            outcome = _sync_chunk(db, source, mailbox_id, plan, state, chunk, limits, on_mail)
            if outcome is None:
                summary.status = "skipped"
                return
            counts, summary.last_uid = outcome
            summary.fetched += counts.fetched
            summary.new += counts.new
            summary.duplicates += counts.duplicates
            summary.unparsed += counts.unparsed
            summary.quarantined += counts.quarantined
            summary.errors.extend(counts.errors)
            if on_batch is not None:
                on_batch(summary.last_uid)


def _finish(db: Database, mailbox_id: int, summary: SyncSummary, owner: str | None, now: datetime) -> None:
    fatal = next((e for e in summary.errors if e.get("fatal")), None)
    if summary.status == "running":
        summary.status = "error" if fatal else "partial" if summary.unparsed or summary.quarantined else "ok"
    with db.transaction() as session:
        if summary.run_id is not None:
            run = session.get_one(SyncRun, summary.run_id)
            run.status, run.finished_at = summary.status, now
            run.fetched, run.new, run.duplicates, run.unparsed, run.quarantined = (
                summary.fetched,
                summary.new,
                summary.duplicates,
                summary.unparsed,
                summary.quarantined,
            )
            run.errors = [{k: v for k, v in e.items() if k != "fatal"} for e in summary.errors[:_MAX_RUN_ERRORS]]
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is None:
            return
        if owner is not None and mailbox.sync_owner == owner:
            mailbox.sync_owner = mailbox.sync_lease_until = None
        if summary.status == "skipped":
            return
        if fatal:
            if mailbox.last_error_code != fatal["code"]:  # one event per outage, not one per interval
                emit_sync_failed(session, mailbox, fatal["code"], fatal["message"])
            mailbox.last_error_code, mailbox.last_error = fatal["code"], fatal["message"]
        else:
            mailbox.last_error_code = mailbox.last_error = None
            mailbox.last_synced_at = now


def sync_mailbox(
    db: Database,
    mailbox_id: int,
    settings: Settings,
    *,
    source_factory: SourceFactory = default_source_factory,
    now: Callable[[], datetime] = utcnow,
    on_mail: Callable[[FetchedMail], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> SyncSummary:
    """Fetch and store the mailbox's new mail. Mailbox and database trouble is recorded and returned,
    never raised; the run row always ends finished (or, when even that cannot be written, the next run
    closes it as `interrupted`).

    `on_mail` runs inside the batch transaction, once per mail once the batch is stored; `on_batch` after
    each commit (with the new `last_uid`): progress reporting, and fault tests.
    """
    summary = SyncSummary(mailbox_id=mailbox_id)
    plan = _begin(db, mailbox_id, settings, summary, now())
    if plan is not None:
        try:
            _run(db, mailbox_id, plan, settings, summary, source_factory, now(), on_mail, on_batch)
        except MailboxError as exc:
            summary.errors.append(_error(exc.code, str(exc), fatal=True))
        except SQLAlchemyError as exc:
            log.warning("%s: %s", plan.name, _database_message(exc))
            summary.errors.append(_error(DATABASE, _database_message(exc), fatal=True))
        except Exception as exc:
            log.exception("sync of mailbox %s failed", plan.name)
            summary.errors.append(_error(INTERNAL, f"The sync failed unexpectedly: {exc}. See the log.", fatal=True))
    try:
        _finish(db, mailbox_id, summary, plan.owner if plan else None, now())
    except SQLAlchemyError as exc:
        log.warning("%s: the sync's outcome could not be recorded. %s", summary.mailbox, _database_message(exc))
        summary.status = "error"
        if not summary.error_code:
            summary.errors.append(_error(DATABASE, _database_message(exc), fatal=True))
    finally:
        if plan is not None:
            with _ACTIVE_LOCK:
                _ACTIVE_CLAIMS.discard(plan.owner)
    log.info("sync %s", summary.line())
    return summary


def _database_message(exc: BaseException) -> str:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (
        f"The database failed during the sync ({detail[0][:200] if detail else type(exc).__name__}). Nothing "
        "was lost: the next sync continues where this one stopped. Check that the database server is up."
    )


def sync_all(
    db: Database,
    settings: Settings,
    store: str | None = None,
    *,
    source_factory: SourceFactory = default_source_factory,
    now: Callable[[], datetime] = utcnow,
) -> list[SyncSummary]:
    """Sync every enabled mailbox (of one store, when named). A failing mailbox never stops the others."""
    with db.read() as session:
        query = select(Mailbox.id, Mailbox.name).where(Mailbox.enabled.is_(True)).order_by(Mailbox.id)
        if store is not None:
            store_row = session.scalar(select(Store).where(Store.name == store))
            if store_row is None:
                raise InputError(f"No store named {store!r}. List stores in Settings → Stores.")
            query = query.where(Mailbox.store_id == store_row.id)
        mailboxes = [(row.id, row.name) for row in session.execute(query)]
    summaries = []
    for mailbox_id, name in mailboxes:
        try:
            summaries.append(sync_mailbox(db, mailbox_id, settings, source_factory=source_factory, now=now))
        except Exception as exc:
            log.exception("sync of mailbox %s failed", name)
            code, message = (
                (DATABASE, _database_message(exc))
                if isinstance(exc, SQLAlchemyError)
                else (INTERNAL, f"The sync failed unexpectedly: {exc}. See the log.")
            )
            summaries.append(
                SyncSummary(
                    mailbox_id=mailbox_id,
                    mailbox=name,
                    status="error",
                    errors=[_error(code, message, fatal=True)],
                )
            )
    return summaries


# ---- lag -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailboxLag:
    mailbox_id: int
    store_id: int
    name: str
    last_synced_at: datetime | None
    newest_mail_at: datetime | None
    sync_age: timedelta | None  # now − last successful sync
    mail_age: timedelta | None  # now − newest mail seen
    error_code: str | None
    error: str | None

    def alert(self, threshold: timedelta = LAG_THRESHOLD) -> str | None:
        """Why this mailbox needs attention, or None."""
        if self.error_code:
            return f"{self.name}: {self.error}"
        if self.sync_age is None:
            return f"{self.name}: not synced yet."
        if self.sync_age > threshold:
            minutes = int(self.sync_age.total_seconds() // 60)
            return f"{self.name}: last synced {minutes} min ago. Check that `replydesk worker` is running."
        return None


def mailbox_lag(mailbox: Mailbox, now: datetime) -> MailboxLag:
    return MailboxLag(
        mailbox_id=mailbox.id,
        store_id=mailbox.store_id,
        name=mailbox.name,
        last_synced_at=mailbox.last_synced_at,
        newest_mail_at=mailbox.newest_mail_at,
        sync_age=now - mailbox.last_synced_at if mailbox.last_synced_at else None,
        mail_age=now - mailbox.newest_mail_at if mailbox.newest_mail_at else None,
        error_code=mailbox.last_error_code,
        error=mailbox.last_error,
    )


def lag_alerts(session: Session, now: datetime, *, threshold: timedelta = LAG_THRESHOLD) -> list[MailboxLag]:
    """Enabled mailboxes whose last sync failed or is older than `threshold` (or that never synced)."""
    mailboxes = session.scalars(select(Mailbox).where(Mailbox.enabled.is_(True)).order_by(Mailbox.id))
    lags = [mailbox_lag(m, now) for m in mailboxes]
    return [lag for lag in lags if lag.alert(threshold) is not None]

"""Syncing mailboxes: new mail in, batch by batch, without ever losing or duplicating a mail.

Each batch is one transaction that stores the mails AND moves the mailbox's high-water mark
(`last_uid`), so a process killed at any moment leaves either the whole batch or none of it. On
PostgreSQL the mailbox row is locked for the batch (`FOR UPDATE SKIP LOCKED`): a second worker on
the same mailbox skips it instead of fetching the same UIDs. A changed UIDVALIDITY (the folder was
recreated) resets the mark and re-scans; `store_mails` deduplicates by Message-ID. Every run leaves a
`SyncRun`; every failure a coded error that tells the user what to do. One mailbox failing never
stops the others.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from engine import crypto
from engine.db.base import utcnow
from engine.db.models import Mailbox, Message, RawMail, Store, SyncRun
from engine.db.session import Database
from engine.errors import ConfigError, InputError, MailboxError
from engine.services.inbox import UNPARSED, IncomingMail, StoredMail, store_mail, store_mails
from engine.settings import Settings
from engine.sync.imap import FetchedMail, FolderState, ImapConfig, ImapSource, MessageSource

__all__ = [
    "LAG_THRESHOLD",
    "MailboxLag",
    "SourceFactory",
    "SyncSummary",
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


@dataclass
class _BatchCounts:
    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    unparsed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def imap_config(mailbox: Mailbox, settings: Settings, *, timeout: float = 30.0) -> ImapConfig:
    return ImapConfig(
        host=mailbox.imap_host,
        port=mailbox.imap_port,
        security=mailbox.imap_security,
        username=mailbox.username,
        password=crypto.decrypt(settings, mailbox.password_encrypted),
        timeout=timeout,
    )


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _lock_mailbox(session: Session, mailbox_id: int) -> Mailbox | None:
    """The mailbox row, locked for this transaction; None when another worker holds it (PostgreSQL)."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks: a write takes the database's write lock up front. It also opens the real
        # transaction: pysqlite begins one only at the first write, and a SAVEPOINT opened before that is
        # committed by its own RELEASE, which would store mails without moving the high-water mark.
        session.execute(update(Mailbox).where(Mailbox.id == mailbox_id).values(last_uid=Mailbox.last_uid))
    return session.scalar(
        select(Mailbox)
        .where(Mailbox.id == mailbox_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )


def _backfill_since(settings: Settings, now: datetime) -> date | None:
    # 0 days means no window: the whole folder is read on first contact.
    return (now - timedelta(days=settings.backfill_days)).date() if settings.backfill_days > 0 else None


def _keep_unparsed(
    session: Session, store: Store, mail: FetchedMail, source: str, mailbox_id: int, reason: str
) -> StoredMail:
    """Last resort when parsing crashed: the raw bytes are kept as an `unparsed` message all the same."""
    digest = hashlib.sha256(mail.raw).hexdigest()
    key = f"sha:{digest}"
    found = session.scalar(select(Message).where(Message.store_id == store.id, Message.dedupe_key == key))
    if found is not None:
        return StoredMail("duplicate", found.id, found.kind)
    if session.get(RawMail, digest) is None:
        session.add(RawMail(sha256=digest, size=len(mail.raw), content=mail.raw))
        session.flush()  # no ORM relationship orders the two inserts: the raw row must exist first
    row = Message(
        store_id=store.id,
        mailbox_id=mailbox_id,
        kind=UNPARSED,
        dedupe_key=key,
        raw_sha256=digest,
        source=source,
        parse_error=reason,
        received_at=mail.internal_date or utcnow(),
        processed_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return StoredMail("unparsed", row.id, UNPARSED, reason=reason)


def _source(mailbox: Mailbox, mail: FetchedMail) -> str:
    return f"imap:{mailbox.name}:{mailbox.uidvalidity}:{mail.uid}"


def _store_fetched(session: Session, store: Store, mailbox: Mailbox, mails: list[FetchedMail]) -> list[StoredMail]:
    """Store a fetched batch; when storing crashes (a parser bug), store its mails one by one instead, so
    only the mail that crashes it is kept raw, as `unparsed`."""
    incoming = [IncomingMail(mail.raw, _source(mailbox, mail), mailbox.id) for mail in mails]
    try:
        return store_mails(session, store, incoming)  # a crash leaves nothing of the batch behind
    except (SQLAlchemyError, MemoryError):
        raise  # database trouble: the batch rolls back whole and the next run repeats it
    except Exception:
        log.warning("storing a batch of mailbox %s crashed; storing its mails one by one", mailbox.name)
    return [_store_one(session, store, mailbox, mail) for mail in mails]


def _store_one(session: Session, store: Store, mailbox: Mailbox, mail: FetchedMail) -> StoredMail:
    source = _source(mailbox, mail)
    try:
        return store_mail(session, store, mail.raw, source=source, mailbox_id=mailbox.id)
    except (SQLAlchemyError, MemoryError):
        raise
    except Exception as exc:
        log.exception("storing UID %s of mailbox %s failed; keeping it raw", mail.uid, mailbox.name)
        try:
            with session.begin_nested():
                return _keep_unparsed(session, store, mail, source, mailbox.id, f"parser crashed: {exc}")
        except IntegrityError:
            return StoredMail("duplicate", None, UNPARSED)


def _error(code: str, message: str, *, fatal: bool = False, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"code": code, "message": message, **extra}
    if fatal:
        entry["fatal"] = True
    return entry


def _begin(db: Database, mailbox_id: int, settings: Settings, summary: SyncSummary) -> _Plan | None:
    with db.transaction() as session:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is None:
            raise InputError(f"No mailbox with id {mailbox_id}. List mailboxes with `replydesk mailbox-list`.")
        run = SyncRun(kind="imap", store_id=mailbox.store_id, mailbox_id=mailbox.id, status="running", errors=[])
        session.add(run)
        session.flush()
        summary.run_id, summary.mailbox, summary.last_uid = run.id, mailbox.name, mailbox.last_uid
        try:
            config = imap_config(mailbox, settings)
        except ConfigError as exc:
            summary.errors.append(_error(CREDENTIALS_UNREADABLE, str(exc), fatal=True))
            return None
        return _Plan(mailbox.store_id, mailbox.name, mailbox.folder, config, mailbox.uidvalidity)


def _prepare_folder(db: Database, mailbox_id: int, state: FolderState, summary: SyncSummary) -> int | None:
    """Adopt the folder's UIDVALIDITY (resetting the mark when it changed); the UID to continue after."""
    with db.transaction() as session:
        row = _lock_mailbox(session, mailbox_id)
        if row is None:
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


def _sync_batch(
    db: Database,
    source: MessageSource,
    mailbox_id: int,
    state: FolderState,
    uids: Sequence[int],
    on_mail: Callable[[FetchedMail], None] | None,
) -> tuple[_BatchCounts, int] | None:
    """Fetch and store one batch and move the mark, all in one transaction. None: stop this run."""
    counts = _BatchCounts()
    with db.transaction() as session:
        mailbox = _lock_mailbox(session, mailbox_id)
        if mailbox is None or mailbox.uidvalidity != state.uidvalidity:
            return None  # another worker holds the mailbox, or reset it after a UIDVALIDITY change
        todo = [uid for uid in uids if uid > mailbox.last_uid]
        if not todo:
            return counts, mailbox.last_uid
        store = session.get_one(Store, mailbox.store_id)
        mails = source.fetch(todo)
        for mail, stored in zip(mails, _store_fetched(session, store, mailbox, mails), strict=True):
            counts.fetched += 1
            if stored.status == "new":
                counts.new += 1
            elif stored.status == "duplicate":
                counts.duplicates += 1
            else:
                counts.unparsed += 1
                counts.errors.append(_error("unparsed", f"UID {mail.uid}: {stored.reason}", uid=mail.uid))
            if mail.internal_date and (mailbox.newest_mail_at is None or mail.internal_date > mailbox.newest_mail_at):
                mailbox.newest_mail_at = mail.internal_date
            if on_mail is not None:
                on_mail(mail)
        # UIDs the server no longer returned (expunged meanwhile) are passed too: they are gone for good.
        mailbox.last_uid = max(todo)
        return counts, mailbox.last_uid


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
    with source_factory(plan.config) as source:
        state = source.select_folder(plan.folder)
        after_uid = _prepare_folder(db, mailbox_id, state, summary)
        if after_uid is None:
            summary.status = "skipped"
            return
        since = _backfill_since(settings, now) if after_uid == 0 else None
        uids = source.search_uids(after_uid=after_uid, since=since)
        if not uids and since is not None and state.uidnext:
            # First contact and nothing inside the window: start from here, older mail stays unread.
            with db.transaction() as session:
                row = _lock_mailbox(session, mailbox_id)
                if row is not None and row.uidvalidity == state.uidvalidity and row.last_uid == 0:
                    row.last_uid = state.uidnext - 1
                    summary.last_uid = row.last_uid
        for chunk in _chunks(uids, max(1, settings.sync_batch_size)):
            outcome = _sync_batch(db, source, mailbox_id, state, chunk, on_mail)
            if outcome is None:
                summary.status = "skipped"
                return
            counts, summary.last_uid = outcome
            summary.fetched += counts.fetched
            summary.new += counts.new
            summary.duplicates += counts.duplicates
            summary.unparsed += counts.unparsed
            summary.errors.extend(counts.errors)
            if on_batch is not None:
                on_batch(summary.last_uid)


def _finish(db: Database, mailbox_id: int, summary: SyncSummary, now: datetime) -> None:
    fatal = next((e for e in summary.errors if e.get("fatal")), None)
    if summary.status == "running":
        summary.status = "error" if fatal else "partial" if summary.unparsed else "ok"
    with db.transaction() as session:
        if summary.run_id is not None:
            run = session.get_one(SyncRun, summary.run_id)
            run.status, run.finished_at = summary.status, now
            run.fetched, run.new, run.duplicates, run.unparsed = (
                summary.fetched,
                summary.new,
                summary.duplicates,
                summary.unparsed,
            )
            run.errors = [{k: v for k, v in e.items() if k != "fatal"} for e in summary.errors[:_MAX_RUN_ERRORS]]
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is None or summary.status == "skipped":
            return
        if fatal:
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
    """Fetch and store the mailbox's new mail. Mailbox trouble is recorded and returned, never raised.

    `on_mail` runs inside the batch transaction, once per mail once the batch is stored; `on_batch` after
    each commit (with the new `last_uid`): progress reporting, and fault tests.
    """
    summary = SyncSummary(mailbox_id=mailbox_id)
    plan = _begin(db, mailbox_id, settings, summary)
    if plan is not None:
        try:
            _run(db, mailbox_id, plan, settings, summary, source_factory, now(), on_mail, on_batch)
        except MailboxError as exc:
            summary.errors.append(_error(exc.code, str(exc), fatal=True))
        except SQLAlchemyError:
            raise
        except Exception as exc:
            log.exception("sync of mailbox %s failed", plan.name)
            summary.errors.append(_error(INTERNAL, f"The sync failed unexpectedly: {exc}. See the log.", fatal=True))
    _finish(db, mailbox_id, summary, now())
    log.info("sync %s", summary.line())
    return summary


def sync_all(
    db: Database,
    settings: Settings,
    store: str | None = None,
    *,
    source_factory: SourceFactory = default_source_factory,
    now: Callable[[], datetime] = utcnow,
) -> list[SyncSummary]:
    """Sync every enabled mailbox (of one store, when named). A failing mailbox never stops the others."""
    with db.transaction() as session:
        query = select(Mailbox.id).where(Mailbox.enabled.is_(True)).order_by(Mailbox.id)
        if store is not None:
            store_row = session.scalar(select(Store).where(Store.name == store))
            if store_row is None:
                raise InputError(f"No store named {store!r}. List stores in Settings → Stores.")
            query = query.where(Mailbox.store_id == store_row.id)
        mailbox_ids = list(session.scalars(query))
    summaries = []
    for mailbox_id in mailbox_ids:
        try:
            summaries.append(sync_mailbox(db, mailbox_id, settings, source_factory=source_factory, now=now))
        except Exception as exc:
            log.exception("sync of mailbox #%s failed", mailbox_id)
            summaries.append(
                SyncSummary(
                    mailbox_id=mailbox_id,
                    status="error",
                    errors=[_error(INTERNAL, f"The sync failed unexpectedly: {exc}. See the log.", fatal=True)],
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

"""One sync batch: sizes first, then the mails (whole, or the beginning of one too large to take whole),
parsed outside any transaction; then one short transaction stores them and moves the high-water mark.

No mail stops a mailbox: a mail the database refuses is stored `unparsed` with sanitised values
(`store_resilient`), and one that cannot be stored even so, or that exhausts memory on its own, becomes a
`QuarantinedMail` row (mailbox, UID, size, reason, raw bytes when they could be kept). The mark moves past
all of them. `MemoryError` on a group of mails splits the group in halves and tries again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.db.base import utcnow
from engine.db.models import Mailbox, QuarantinedMail, RawMail, Store
from engine.db.session import Database
from engine.services.inbox import IncomingMail, PreparedMail, StoredMail, prepare_mails, store_resilient
from engine.sync.imap import FetchedMail, FolderState, MessageSource

__all__ = [
    "BATCH_BYTES",
    "HEADER_BYTES",
    "TEXT_BYTES",
    "BatchCounts",
    "FetchLimits",
    "fetch_group",
    "lock_mailbox",
    "quarantine",
    "size_groups",
    "store_group",
]

log = logging.getLogger(__name__)

HEADER_BYTES = 256 * 1024  # of a mail too large to fetch whole: its headers up to this much
TEXT_BYTES = 64 * 1024  # and the beginning of its text
BATCH_BYTES = 64 * 1024 * 1024  # mail bytes fetched and held at once, whatever the batch size
SYNC_LEASE = timedelta(minutes=10)  # a claim not renewed for this long is taken over


@dataclass(frozen=True)
class FetchLimits:
    max_mail_bytes: int  # larger mails keep their headers and the beginning of their text
    not_before: datetime | None  # the mailbox cannot hold mail older than this


@dataclass
class BatchCounts:
    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    unparsed: int = 0
    quarantined: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: BatchCounts) -> None:
        self.fetched += other.fetched
        self.new += other.new
        self.duplicates += other.duplicates
        self.unparsed += other.unparsed
        self.quarantined += other.quarantined
        self.errors.extend(other.errors)


@dataclass(frozen=True)
class _Ready:
    """One UID after fetching and parsing: its mail, or why it must be quarantined."""

    uid: int
    size: int
    mail: FetchedMail | None
    prepared: PreparedMail | None
    problem: str | None = None


def size_groups(uids: Sequence[int], sizes: dict[int, int], *, max_mail_bytes: int, budget: int) -> list[list[int]]:
    """Consecutive UIDs grouped so each group holds at most `budget` bytes (a mail is counted at most at
    `max_mail_bytes`, what is fetched of it; a mail alone may exceed the budget). Pure."""
    groups: list[list[int]] = []
    current: list[int] = []
    held = 0
    for uid in sorted(uids):
        size = min(sizes.get(uid, 0), max_mail_bytes)
        if current and held + size > budget:
            groups.append(current)
            current, held = [], 0
        current.append(uid)
        held += size
    if current:
        groups.append(current)
    return groups


def _oversized_note(size: int, limits: FetchLimits) -> str:
    return (
        f"only the headers and the first {TEXT_BYTES // 1024} KB of the text were fetched: the mail has "
        f"{size:,} bytes, more than the {limits.max_mail_bytes // (1024 * 1024)} MB limit (REPLYDESK_MAX_MAIL_MB)"
    )


def fetch_group(
    source: MessageSource,
    uids: Sequence[int],
    sizes: dict[int, int],
    limits: FetchLimits,
    describe: Callable[[FetchedMail], str],
    mailbox_id: int,
) -> list[_Ready]:
    """Fetch and parse a group (network and CPU, never inside a transaction). On `MemoryError` the group is
    split in halves; a single mail that still exhausts memory is returned for quarantine."""
    try:
        whole = [uid for uid in uids if sizes.get(uid, 0) <= limits.max_mail_bytes]
        mails = source.fetch(whole) if whole else []
        for uid in uids:
            if sizes.get(uid, 0) > limits.max_mail_bytes:
                part = source.fetch_truncated(uid, header_bytes=HEADER_BYTES, text_bytes=TEXT_BYTES)
                if part is not None:
                    mails.append(part)
        mails.sort(key=lambda m: m.uid)
        incoming = [
            IncomingMail(
                mail.raw,
                describe(mail),
                mailbox_id,
                arrived_at=mail.internal_date,
                not_before=limits.not_before,
                note=_oversized_note(mail.size or sizes.get(mail.uid, 0), limits) if mail.truncated else None,
            )
            for mail in mails
        ]
        prepared = prepare_mails(incoming)
    except MemoryError:
        if len(uids) == 1:
            log.warning("UID %s (%s bytes) exhausted memory; quarantining it", uids[0], sizes.get(uids[0], 0))
            return [_Ready(uids[0], sizes.get(uids[0], 0), None, None, "ran out of memory fetching or parsing it")]
        half = len(uids) // 2
        first = fetch_group(source, uids[:half], sizes, limits, describe, mailbox_id)
        return first + fetch_group(source, uids[half:], sizes, limits, describe, mailbox_id)
    return [
        _Ready(mail.uid, mail.size or sizes.get(mail.uid, 0), mail, ready)
        for mail, ready in zip(mails, prepared, strict=True)
    ]


def lock_mailbox(session: Session, mailbox_id: int) -> Mailbox | None:
    """The mailbox row, locked until the (short) transaction ends."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks: a write takes the database's write lock up front. It also opens the real
        # transaction: pysqlite begins one only at the first write, and a SAVEPOINT opened before that is
        # committed by its own RELEASE, which would store mails without moving the high-water mark.
        session.execute(update(Mailbox).where(Mailbox.id == mailbox_id).values(last_uid=Mailbox.last_uid))
    return session.scalar(
        select(Mailbox).where(Mailbox.id == mailbox_id).with_for_update().execution_options(populate_existing=True)
    )


def quarantine(
    session: Session, mailbox: Mailbox, uid: int, size: int, reason: str, raw: bytes | None
) -> QuarantinedMail:
    """Keep what is known of a mail that could not be stored; its raw bytes too when the database takes them."""
    digest: str | None = None
    if raw is not None:
        digest = hashlib.sha256(raw).hexdigest()
        try:
            with session.begin_nested():
                if session.get(RawMail, digest) is None:
                    session.add(RawMail(sha256=digest, size=len(raw), content=raw))
                    session.flush()
        except MemoryError:
            raise
        except Exception:
            log.warning("the raw bytes of UID %s of mailbox %s could not be kept either", uid, mailbox.name)
            digest = None
    uidvalidity = mailbox.uidvalidity or 0
    row = session.scalar(
        select(QuarantinedMail).where(
            QuarantinedMail.mailbox_id == mailbox.id,
            QuarantinedMail.uidvalidity == uidvalidity,
            QuarantinedMail.uid == uid,
        )
    )
    if row is None:
        row = QuarantinedMail(
            store_id=mailbox.store_id,
            mailbox_id=mailbox.id,
            uidvalidity=uidvalidity,
            uid=uid,
            size=size,
            status="waiting",
            attempts=0,
        )
        session.add(row)
    row.reason, row.raw_sha256 = reason[:2000], digest or row.raw_sha256
    session.flush()
    return row


def _count(counts: BatchCounts, uid: int, stored: StoredMail) -> None:
    counts.fetched += 1
    if stored.status == "new":
        counts.new += 1
    elif stored.status == "duplicate":
        counts.duplicates += 1
    else:
        counts.unparsed += 1
        counts.errors.append({"code": "unparsed", "message": f"UID {uid}: {stored.reason}", "uid": uid})


def store_group(
    db: Database,
    mailbox_id: int,
    state: FolderState,
    owner: str,
    group: Sequence[int],
    ready: Sequence[_Ready],
    on_mail: Callable[[FetchedMail], None] | None,
) -> tuple[BatchCounts, int] | None:
    """Store a fetched group and move the mark past every UID of it, in one transaction; a `MemoryError`
    stores it in halves instead. None: stop this run (the folder changed, or another sync took over)."""
    try:
        return _store_group(db, mailbox_id, state, owner, group, ready, on_mail)
    except MemoryError:
        if len(group) == 1:
            return _quarantine_alone(db, mailbox_id, state, owner, group[0], ready)
    half = len(group) // 2
    wanted = set(group[:half])
    first = store_group(db, mailbox_id, state, owner, group[:half], [r for r in ready if r.uid in wanted], on_mail)
    if first is None:
        return None
    second = store_group(db, mailbox_id, state, owner, group[half:], [r for r in ready if r.uid not in wanted], on_mail)
    if second is None:
        return None
    first[0].add(second[0])
    return first[0], second[1]


def _claimed(mailbox: Mailbox | None, state: FolderState, owner: str) -> bool:
    return mailbox is not None and mailbox.uidvalidity == state.uidvalidity and mailbox.sync_owner == owner


def _store_group(
    db: Database,
    mailbox_id: int,
    state: FolderState,
    owner: str,
    group: Sequence[int],
    ready: Sequence[_Ready],
    on_mail: Callable[[FetchedMail], None] | None,
) -> tuple[BatchCounts, int] | None:
    counts = BatchCounts()
    with db.transaction() as session:
        mailbox = lock_mailbox(session, mailbox_id)
        if mailbox is None or not _claimed(mailbox, state, owner):
            return None
        todo = [item for item in ready if item.uid > mailbox.last_uid]
        store = session.get_one(Store, mailbox.store_id)
        parsed = [item for item in todo if item.prepared is not None]
        results = store_resilient(session, store, [item.prepared for item in parsed if item.prepared is not None])
        outcome = {item.uid: stored for item, stored in zip(parsed, results, strict=True)}
        for item in todo:
            stored = outcome.get(item.uid)
            if stored is not None and stored.status != "failed":
                _count(counts, item.uid, stored)
            else:
                reason = stored.reason if stored is not None else item.problem or "not stored"
                raw = item.mail.raw if item.mail is not None else None
                quarantine(session, mailbox, item.uid, item.size, reason or "not stored", raw)
                counts.fetched += 1
                counts.quarantined += 1
                counts.errors.append({"code": "quarantined", "message": f"UID {item.uid}: {reason}", "uid": item.uid})
            when = item.mail.internal_date if item.mail is not None else None
            if (
                when is not None
                and when <= utcnow()
                and (mailbox.newest_mail_at is None or when > mailbox.newest_mail_at)
            ):
                mailbox.newest_mail_at = when
            if on_mail is not None and item.mail is not None:
                on_mail(item.mail)
        # UIDs the server no longer returned (expunged meanwhile) are passed too: they are gone for good.
        mailbox.last_uid = max(mailbox.last_uid, max(group))
        mailbox.sync_lease_until = utcnow() + SYNC_LEASE
        return counts, mailbox.last_uid


def _quarantine_alone(
    db: Database, mailbox_id: int, state: FolderState, owner: str, uid: int, ready: Sequence[_Ready]
) -> tuple[BatchCounts, int] | None:
    counts = BatchCounts(fetched=1, quarantined=1)
    size = next((item.size for item in ready if item.uid == uid), 0)
    reason = "ran out of memory storing it"
    with db.transaction() as session:
        mailbox = lock_mailbox(session, mailbox_id)
        if mailbox is None or not _claimed(mailbox, state, owner):
            return None
        if uid > mailbox.last_uid:
            quarantine(session, mailbox, uid, size, reason, None)
            counts.errors.append({"code": "quarantined", "message": f"UID {uid}: {reason}", "uid": uid})
            mailbox.last_uid = uid
        return counts, mailbox.last_uid

"""Importing mail from files (.eml, folders, mbox, Maildir): one transaction per batch, a sync record per run.

No mail stops the import: mails are parsed before each batch's transaction; a batch the database refuses
is stored again one mail at a time (`store_resilient`), so a mail it cannot take as parsed is kept raw as
`unparsed` with the reason; a mail that cannot be stored at all, or a file that cannot be read, is
reported. The summary counts every outcome and the run's record keeps the reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from engine.db.base import utcnow
from engine.db.models import Store, SyncRun
from engine.db.session import Database
from engine.mail import RawMail
from engine.services.inbox import (
    IncomingMail,
    PreparedMail,
    Retime,
    StoredMail,
    prepare_mails,
    store_prepared,
    store_resilient,
)


@dataclass
class ImportSummary:
    run_id: int
    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    unparsed: int = 0
    failed: int = 0  # neither stored nor kept: unreadable files, mails the database refused even raw
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every mail was read and stored as parsed (new or already there)."""
        return not (self.unparsed or self.failed)

    def line(self) -> str:
        text = (
            f"{self.fetched} read, {self.new} new, {self.duplicates} already stored, {self.unparsed} unparsed "
            f"(kept raw; see the sync log)"
        )
        return text + (f", {self.failed} failed (not stored; see below)" if self.failed else "")

    def report_unreadable(self, source: str, message: str) -> None:
        self.failed += 1
        self.errors.append({"code": "unreadable", "message": f"{source}: {message}"})


def _batches(items: Iterable[RawMail], size: int) -> Iterator[list[RawMail]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def import_raw_mails(
    db: Database,
    store_id: int,
    mails: Iterable[RawMail],
    *,
    batch_size: int = 200,
    retime: Retime | None = None,
    summary: ImportSummary | None = None,
) -> ImportSummary:
    """Store every mail; pass `summary` (from `start_import`) to collect errors the mail source reports."""
    summary = summary or start_import(db, store_id)
    try:
        for batch in _batches(mails, batch_size):
            prepared = prepare_mails(IncomingMail(mail.raw, f"file:{mail.source}") for mail in batch)
            for mail, stored in zip(batch, _store(db, store_id, prepared, retime), strict=True):
                _count(summary, mail, stored)
    except Exception as exc:  # the database itself failed: nothing more can be stored
        summary.errors.append({"code": "error", "message": str(exc)})
        _finish(db, summary, "error")
        raise
    _finish(db, summary, "ok" if summary.ok else "partial")
    return summary


def start_import(db: Database, store_id: int) -> ImportSummary:
    with db.transaction() as session:
        run = SyncRun(kind="import", store_id=store_id, status="running", errors=[])
        session.add(run)
        session.flush()
        return ImportSummary(run_id=run.id)


def _store(db: Database, store_id: int, prepared: list[PreparedMail], retime: Retime | None) -> list[StoredMail]:
    try:
        with db.transaction() as session:
            return store_prepared(session, session.get_one(Store, store_id), prepared, retime=retime)
    except MemoryError:
        raise
    except Exception:  # a mail the database refuses (a value it cannot hold): the batch again, one by one
        with db.transaction() as session:
            return store_resilient(session, session.get_one(Store, store_id), prepared)


def _count(summary: ImportSummary, mail: RawMail, stored: StoredMail) -> None:
    summary.fetched += 1
    if stored.status == "new":
        summary.new += 1
    elif stored.status == "duplicate":
        summary.duplicates += 1
    elif stored.status == "unparsed":
        summary.unparsed += 1
        summary.errors.append({"code": "unparsed", "message": f"{mail.source}: {stored.reason}"})
    else:
        summary.failed += 1
        summary.errors.append({"code": "failed", "message": f"{mail.source}: {stored.reason}"})


def _finish(db: Database, summary: ImportSummary, status: str) -> None:
    with db.transaction() as session:
        run = session.get_one(SyncRun, summary.run_id)
        run.status = status
        run.finished_at = utcnow()
        run.fetched, run.new = summary.fetched, summary.new
        run.duplicates, run.unparsed = summary.duplicates, summary.unparsed
        run.errors = summary.errors[:200]

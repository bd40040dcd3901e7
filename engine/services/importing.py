"""Importing mail from files (.eml, folders, mbox, Maildir): one transaction per batch, a sync record per run."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from engine.db.base import utcnow
from engine.db.models import Store, SyncRun
from engine.db.session import Database
from engine.mail import RawMail
from engine.services.inbox import Retime, store_mail


@dataclass
class ImportSummary:
    run_id: int
    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    unparsed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.fetched} read, {self.new} new, {self.duplicates} already stored, {self.unparsed} unparsed "
            f"(kept raw; see the sync log)"
        )


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
) -> ImportSummary:
    with db.transaction() as session:
        run = SyncRun(kind="import", store_id=store_id, status="running", errors=[])
        session.add(run)
        session.flush()
        summary = ImportSummary(run_id=run.id)
    try:
        for batch in _batches(mails, batch_size):
            with db.transaction() as session:
                store = session.get_one(Store, store_id)
                for mail in batch:
                    stored = store_mail(session, store, mail.raw, source=f"file:{mail.source}", retime=retime)
                    summary.fetched += 1
                    if stored.status == "new":
                        summary.new += 1
                    elif stored.status == "duplicate":
                        summary.duplicates += 1
                    else:
                        summary.unparsed += 1
                        summary.errors.append({"code": "unparsed", "message": f"{mail.source}: {stored.reason}"})
    except Exception as exc:
        summary.errors.append({"code": "error", "message": str(exc)})
        _finish(db, summary, "error")
        raise
    _finish(db, summary, "partial" if summary.unparsed else "ok")
    return summary


def _finish(db: Database, summary: ImportSummary, status: str) -> None:
    with db.transaction() as session:
        run = session.get_one(SyncRun, summary.run_id)
        run.status = status
        run.finished_at = utcnow()
        run.fetched, run.new = summary.fetched, summary.new
        run.duplicates, run.unparsed = summary.duplicates, summary.unparsed
        run.errors = summary.errors[:200]

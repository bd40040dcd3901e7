"""Retrying a quarantined mail: parse it again (with today's parser) and store it.

The bytes come from `raw_mail` when they were kept, otherwise from the server again by UID (only while
the folder's UIDVALIDITY is unchanged). The fetch and the parse happen outside any transaction; the
store is one short transaction. A retry that fails again keeps the row with the new reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.db.base import utcnow
from engine.db.models import Mailbox, QuarantinedMail, RawMail, Store
from engine.db.session import Database
from engine.errors import InputError
from engine.services.inbox import IncomingMail, prepare_mails, store_resilient
from engine.settings import Settings
from engine.sync.batch import HEADER_BYTES, TEXT_BYTES
from engine.sync.imap import FetchedMail, ImapConfig
from engine.sync.runner import SourceFactory, default_source_factory, imap_config
from engine.workflow.permissions import Action, Principal, require

__all__ = ["RetryOutcome", "retry_quarantined"]


@dataclass(frozen=True)
class RetryOutcome:
    stored: bool
    status: str  # new, duplicate, unparsed (stored) or failed (still quarantined)
    message_row_id: int | None
    reason: str | None


@dataclass(frozen=True)
class _Target:
    mailbox_id: int
    mailbox_name: str
    folder: str
    uidvalidity: int
    uid: int
    size: int
    raw: bytes | None


def _target(
    db: Database, settings: Settings, quarantine_id: int, principal: Principal | None
) -> tuple[_Target, ImapConfig | None]:
    with db.read() as session:
        row = session.get(QuarantinedMail, quarantine_id)
        if row is None:
            raise InputError(f"No quarantined mail #{quarantine_id}: it was retried and stored already.")
        if principal is not None:
            require(principal, Action.ACT_ON_CONVERSATION, store_id=row.store_id)
        if row.status == "stored":
            raise InputError(f"Quarantined mail #{quarantine_id} is stored already (message #{row.message_row_id}).")
        mailbox = session.get_one(Mailbox, row.mailbox_id)
        kept = session.get(RawMail, row.raw_sha256) if row.raw_sha256 else None
        raw = kept.content if kept is not None else None
        config = None if raw is not None else imap_config(mailbox, settings)
        return _Target(mailbox.id, mailbox.name, mailbox.folder, row.uidvalidity, row.uid, row.size, raw), config


def _refetch(target: _Target, config: ImapConfig, settings: Settings, source_factory: SourceFactory) -> FetchedMail:
    with source_factory(config) as source:
        state = source.select_folder(target.folder)
        if state.uidvalidity != target.uidvalidity:
            raise InputError(
                f"The folder {target.folder!r} of mailbox {target.mailbox_name} was recreated since UID "
                f"{target.uid} was quarantined, and its bytes were not kept: the mail cannot be fetched again."
            )
        if target.size > settings.max_mail_mb * 1024 * 1024:
            part = source.fetch_truncated(target.uid, header_bytes=HEADER_BYTES, text_bytes=TEXT_BYTES)
            mails = [part] if part is not None else []
        else:
            mails = source.fetch([target.uid])
    if not mails:
        raise InputError(
            f"UID {target.uid} is no longer in {target.folder!r} of mailbox {target.mailbox_name} (deleted on "
            "the server), and its bytes were not kept."
        )
    return mails[0]


def retry_quarantined(
    db: Database,
    settings: Settings,
    quarantine_id: int,
    *,
    principal: Principal | None = None,
    source_factory: SourceFactory = default_source_factory,
) -> RetryOutcome:
    """Parse and store a quarantined mail again (as `principal`, when a person asks; None: the system).
    Raises `InputError` when it cannot be retried at all, and `MailboxError` when the server cannot be
    reached to fetch it again."""
    target, config = _target(db, settings, quarantine_id, principal)
    raw, arrived = target.raw, None
    if config is not None:  # the bytes were not kept: fetch them again
        mail = _refetch(target, config, settings, source_factory)
        raw, arrived = mail.raw, mail.internal_date
    assert raw is not None
    source = f"imap:{target.mailbox_name}:{target.uidvalidity}:{target.uid}"
    prepared = prepare_mails([IncomingMail(raw, source, target.mailbox_id, arrived_at=arrived)])
    with db.transaction() as session:
        row = session.get_one(QuarantinedMail, quarantine_id)
        store = session.get_one(Store, row.store_id)
        stored = store_resilient(session, store, prepared)[0]
        row.attempts += 1
        row.retried_at = utcnow()
        if stored.status == "failed":
            row.reason = (stored.reason or "not stored")[:2000]
            return RetryOutcome(False, "failed", None, row.reason)
        row.status, row.message_row_id = "stored", stored.message_row_id
        return RetryOutcome(True, stored.status, stored.message_row_id, stored.reason)

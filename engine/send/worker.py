"""The send worker: approved replies out over SMTP, each at most once.

    approved ─claim─▶ sending ──SMTP 250──▶ (Sent folder: provider's copy? else ours) ──▶ sent
        │                 ├── refused, or failed before the DATA command ──▶ failed, retried after a backoff
        │                 │        (5xx, a bad address, or `send_max_attempts` used up: failed for good)
        │                 └── answer lost once the mail may be on the server ──▶ Sent folder has it? sent
        │                          : mailbox files sent mail by itself? checked again after the lease : unknown
        └─gate refuses the exact text─▶ blocked (never sent)
    sending past its lease (the worker died) ──▶ DATA never issued: retried
        ; Sent folder has it: sent ; mailbox files sent mail and the folder positively lacks it: retried
        ; otherwise: unknown (an agent marks it sent or sends it again)

An item is claimed (`FOR UPDATE SKIP LOCKED` on PostgreSQL, a compare-and-set everywhere) and set to
`sending` with a lease in a committed transaction before SMTP is touched; the lease is renewed while the
send runs, and `handed_over_at` is committed right before the DATA command. The reply's Message-ID is
fixed when it is queued, which is what makes the Sent-folder checks possible. No transaction is open
during SMTP or IMAP. One item's failure, of any kind, never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from engine.compliance import blocked_message, check_outgoing
from engine.db.base import utcnow
from engine.db.models import Mailbox, OutboxItem, OutboxState
from engine.db.session import Database
from engine.errors import MailboxError, SendError
from engine.integrations.events import emit_reply_event
from engine.send.claim import Claimed, LeaseKeeper, lock_item, mine, smtp_config, snapshot, take
from engine.send.outbox import Gate, outgoing_verdict
from engine.send.settle import mark_failed, mark_sent, mark_unknown, note, retry_delay
from engine.send.smtp import MailSender, SendOutcomeUnknown, SmtpConfig, SmtpSender, build_reply_message
from engine.services import audit
from engine.settings import Settings
from engine.sync.imap import ImapConfig, ImapSource, MessageSource

__all__ = ["LEASE", "MAX_ATTEMPTS", "SendCounts", "retry_delay", "send_pending", "smtp_config"]

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # renewed every quarter of it while a send runs
MAX_ATTEMPTS = Settings.send_max_attempts

SenderFactory = Callable[[SmtpConfig], MailSender]
SentFolderChecker = Callable[[ImapConfig], MessageSource]


@dataclass
class SendCounts:
    sent: int = 0
    retrying: int = 0  # temporary failure, tried again later
    failed: int = 0  # permanent failure, or attempts used up
    blocked: int = 0
    unknown: int = 0
    recovered: int = 0  # stale `sending` items settled through the Sent folder
    rechecking: int = 0  # outcome unknown; the Sent folder is looked at again once the lease ends

    def line(self) -> str:
        return ", ".join(f"{value} {name}" for name, value in vars(self).items())


def _default_sender(config: SmtpConfig) -> MailSender:
    return SmtpSender(config)


def _default_sent_folder(config: ImapConfig) -> MessageSource:
    return ImapSource(config)


class _SendPass:
    """One pass of the send worker; every method settles what it touched, whatever happens to one item."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        sender_factory: SenderFactory,
        checker: SentFolderChecker,
        now: Callable[[], datetime],
        gate: Gate,
        lease: timedelta,
    ) -> None:
        self.db, self.settings, self.sender_factory, self.checker = db, settings, sender_factory, checker
        self.now, self.gate, self.lease = now, gate, lease
        self.max_attempts = settings.send_max_attempts
        self.counts = SendCounts()

    # ---- Sent folder -------------------------------------------------------------------------------

    def _sent_folder_has(self, claimed: Claimed) -> tuple[bool | None, str]:
        """Whether the Sent folder holds the reply; None (with the reason) when it cannot be told."""
        if claimed.imap is None:
            return None, "no IMAP mailbox is configured to look in the Sent folder"
        try:
            with self.checker(claimed.imap) as folder:
                return folder.contains_message_id(claimed.sent_folder, claimed.message_id), ""
        except MailboxError as exc:
            return None, f"the Sent folder could not be searched ({exc})"
        except Exception as exc:
            return None, f"the Sent folder could not be searched ({type(exc).__name__}: {exc})"

    def _file_copy(self, claimed: Claimed, raw: bytes) -> bool | None:
        """After a 250: True when the provider filed the reply in Sent by itself, False when it did not (our
        copy is stored instead), None when the folder could not be reached. Done before the commit, so a
        crash after this point leaves a copy for the recovery to find."""
        if claimed.imap is None:
            return None
        try:
            with self.checker(claimed.imap) as folder:
                if folder.contains_message_id(claimed.sent_folder, claimed.message_id):
                    return True
                folder.append(claimed.sent_folder, raw)
                return False
        except Exception as exc:  # the reply is out; only the copy (and with it the crash check) is missing
            log.warning("reply %s sent, but no copy stored in %s: %s", claimed.message_id, claimed.sent_folder, exc)
            return None

    # ---- claiming ----------------------------------------------------------------------------------

    def claim_next(self) -> Claimed | None:
        """Claim one due item and set it `sending` (committed), or settle it as blocked. None: nothing due."""
        while True:
            now = self.now()
            with self.db.transaction() as session:
                item = session.scalar(
                    select(OutboxItem)
                    .where(
                        or_(
                            OutboxItem.state == OutboxState.APPROVED,
                            and_(
                                OutboxItem.state == OutboxState.FAILED,
                                OutboxItem.next_attempt_at.is_not(None),
                                OutboxItem.next_attempt_at <= now,
                            ),
                        )
                    )
                    .order_by(OutboxItem.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                if item is None:
                    return None
                try:
                    verdict = outgoing_verdict(session, item, self.gate)
                except Exception as exc:  # a gate failure on one reply must not stop the others
                    if take(session, item, attempts=item.attempts + 1, updated_at=now):
                        error = SendError(
                            f"The compliance check could not run on this reply ({type(exc).__name__}: {exc}). "
                            "It is retried; if this persists, edit the reply and approve it again.",
                            code="gate_failed",
                        )
                        self._count_failure(mark_failed(session, item, error, now, max_attempts=self.max_attempts))
                    continue
                if not verdict.allowed:
                    before = {"state": item.state}
                    item.state, item.next_attempt_at, item.updated_at = OutboxState.BLOCKED, None, now
                    item.last_error = blocked_message(verdict)
                    note(session, item, item.last_error)
                    emit_reply_event(session, "reply.failed", item, code="blocked")
                    audit.record(
                        session,
                        "outbox.blocked",
                        "outbox_item",
                        item.id,
                        before=before,
                        after={"state": item.state, "verdict": verdict.to_dict()},
                    )
                    self.counts.blocked += 1
                    continue
                if not take(
                    session,
                    item,
                    state=OutboxState.SENDING,
                    attempts=item.attempts + 1,
                    lease_until=now + self.lease,
                    handed_over_at=None,
                    updated_at=now,
                ):
                    continue  # another worker claimed it between our read and our write (SQLite)
                return snapshot(session, item, self.settings)

    def _count_failure(self, retried: bool) -> None:
        if retried:
            self.counts.retrying += 1
        else:
            self.counts.failed += 1

    # ---- sending -----------------------------------------------------------------------------------

    def _mark_handed_over(self, claimed: Claimed) -> None:
        """Committed before the DATA command: from here on the server may have the mail."""
        now = self.now()
        with self.db.transaction() as session:
            result = session.execute(
                update(OutboxItem)
                .where(*mine(claimed.item_id, claimed.attempts))
                .values(handed_over_at=now, lease_until=now + self.lease)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                raise SendError("Another worker took this reply over; it is not sent from here.", code="lease_lost")

    def send_one(self, claimed: Claimed) -> None:
        try:
            if claimed.config_error is not None:
                raise claimed.config_error
            message = build_reply_message(
                from_address=claimed.from_address,
                to_address=claimed.to_address,
                subject=claimed.subject,
                body=claimed.body,
                message_id=claimed.message_id,
                in_reply_to=claimed.in_reply_to,
                references=claimed.references,
                date=self.now(),
            )
            raw = message.as_bytes()
        except SendError as exc:
            self._failed(claimed, exc)
            return
        except Exception as exc:  # e.g. text no mail can carry: the reason goes to a human, the pass goes on
            self._failed(
                claimed,
                SendError(
                    f"The reply mail could not be built ({type(exc).__name__}: {exc}). Edit the reply and "
                    "approve it again.",
                    code="build_failed",
                ),
            )
            return
        filed = found = None
        reason = ""
        with LeaseKeeper(self.db, claimed, self.now, self.lease):
            error, uncertain = self._deliver(claimed, message)
            if error is None:
                filed = self._file_copy(claimed, raw)
            elif uncertain:
                found, reason = self._sent_folder_has(claimed)
        if error is None:
            self._settle_sent(claimed, filed)
        elif uncertain:
            self._settle_uncertain(claimed, error, found, reason)
        else:
            self._failed(claimed, error)

    def _deliver(self, claimed: Claimed, message: EmailMessage) -> tuple[SendError | None, bool]:
        """(error, uncertain): no error means the server said 250."""
        handed_over = False

        def before_data() -> None:
            nonlocal handed_over
            self._mark_handed_over(claimed)
            handed_over = True

        try:
            assert claimed.smtp is not None  # config_error is set otherwise
            sender = self.sender_factory(claimed.smtp)
            sender.send(message, sender=claimed.from_address, recipient=claimed.to_address, before_data=before_data)
        except SendOutcomeUnknown as exc:
            return exc, True
        except SendError as exc:  # the sender knows the server did not take the mail
            return exc, False
        except Exception as exc:
            reason = f"The send failed unexpectedly ({type(exc).__name__}: {exc})."
            if handed_over:
                return SendOutcomeUnknown(f"{reason} The server may have received the reply."), True
            return SendError(f"{reason} It is retried.", code="send_failed"), False
        return None, False

    def _settle_sent(self, claimed: Claimed, filed: bool | None) -> None:
        now = self.now()
        try:
            with self.db.transaction() as session:
                item = lock_item(session, claimed.item_id)
                if item.state != OutboxState.SENT:
                    mark_sent(session, item, now, how="smtp")
                if filed is not None and claimed.mailbox_id is not None:
                    mailbox = session.get(Mailbox, claimed.mailbox_id)
                    if mailbox is not None and mailbox.files_sent_mail is not filed:
                        mailbox.files_sent_mail = filed
            self.counts.sent += 1
            return
        except Exception:
            log.exception("reply %s was sent, but recording it in the conversation failed", claimed.item_id)
        # It went out: whatever else failed to be written, the item must never be sent again.
        with self.db.transaction() as session:
            item = lock_item(session, claimed.item_id)
            item.state, item.sent_at, item.next_attempt_at, item.lease_until = OutboxState.SENT, now, None, None
            item.last_error = "Sent, but the reply could not be added to the conversation; see the worker's log."
            emit_reply_event(session, "reply.sent", item, how="smtp")
            audit.record(session, "outbox.sent", "outbox_item", item.id, after={"state": item.state, "how": "smtp"})
        self.counts.sent += 1

    def _settle_uncertain(self, claimed: Claimed, error: SendError, found: bool | None, reason: str) -> None:
        now = self.now()
        with self.db.transaction() as session:
            item = lock_item(session, claimed.item_id)
            if item.state != OutboxState.SENDING or item.attempts != claimed.attempts:
                return  # settled elsewhere meanwhile
            if found:
                mark_sent(session, item, now, how="found in the Sent folder")
                self.counts.sent += 1
            elif found is False and claimed.files_sent_mail:
                # The provider may not have filed it yet: the recovery looks again once the lease ends.
                item.lease_until, item.updated_at = now + self.lease, now
                item.last_error = f"{error} The Sent folder is checked again before anything else happens."
                self.counts.rechecking += 1
            else:
                why = reason or "this mailbox is not known to file sent mail by itself"
                mark_unknown(
                    session,
                    item,
                    f"{error} Not found in the Sent folder ({why}), so it is not sent again by itself.",
                    now,
                )
                self.counts.unknown += 1

    def _failed(self, claimed: Claimed, error: SendError) -> None:
        now = self.now()
        with self.db.transaction() as session:
            item = lock_item(session, claimed.item_id)
            if item.state != OutboxState.SENDING or item.attempts != claimed.attempts:
                return
            self._count_failure(mark_failed(session, item, error, now, max_attempts=self.max_attempts))

    # ---- interrupted sends -------------------------------------------------------------------------

    def recover_stale(self) -> None:
        now = self.now()
        expired = or_(OutboxItem.lease_until.is_(None), OutboxItem.lease_until < now)
        with self.db.read() as session:
            stale_ids = list(
                session.scalars(select(OutboxItem.id).where(OutboxItem.state == OutboxState.SENDING, expired))
            )
        for item_id in stale_ids:
            try:
                self._recover(item_id, expired)
            except Exception:
                log.exception("could not settle the interrupted reply %s; tried again on the next pass", item_id)

    def _recover(self, item_id: int, expired: Any) -> None:
        now = self.now()
        with self.db.transaction() as session:
            item = session.scalar(
                select(OutboxItem)
                .where(OutboxItem.id == item_id, OutboxItem.state == OutboxState.SENDING, expired)
                .with_for_update(skip_locked=True)
            )
            # A lease of our own while we look; the conditions guard SQLite, which has no row locks.
            if item is None or not take(session, item, expired, lease_until=now + self.lease, updated_at=now):
                return  # another worker is on it, or it moved on
            claimed = snapshot(session, item, self.settings)
            if not claimed.handed_over:
                self._retry_now(session, item, now, "Sending was interrupted before the reply was handed over")
                return
        found, reason = self._sent_folder_has(claimed)
        with self.db.transaction() as session:
            item = lock_item(session, item_id)
            if item.state != OutboxState.SENDING or item.attempts != claimed.attempts:
                return
            if found:
                mark_sent(session, item, now, how="found in the Sent folder after an interruption")
                self.counts.recovered += 1
            elif found is False and claimed.files_sent_mail:
                self._retry_now(
                    session,
                    item,
                    now,
                    "Sending was interrupted and the Sent folder, which this mailbox fills by "
                    "itself, does not hold the reply",
                )
            else:
                why = reason or "this mailbox is not known to file sent mail by itself"
                mark_unknown(
                    session,
                    item,
                    f"Sending was interrupted after the reply was handed to the mail server and it is not found "
                    f"in the Sent folder ({why}). Check the Sent folder or the buyer thread in Seller Central, "
                    "then mark it sent or send it again.",
                    now,
                )
                self.counts.unknown += 1

    def _retry_now(self, session: Session, item: OutboxItem, now: datetime, why: str) -> None:
        item.state, item.next_attempt_at, item.updated_at, item.lease_until = OutboxState.FAILED, now, now, None
        item.last_error = f"{why}, so it is sent again."
        audit.record(session, "outbox.retry", "outbox_item", item.id, after={"reason": item.last_error})


def send_pending(
    db: Database,
    settings: Settings,
    *,
    sender_factory: SenderFactory = _default_sender,
    sent_folder_checker: SentFolderChecker = _default_sent_folder,
    now: Callable[[], datetime] = utcnow,
    gate: Gate = check_outgoing,
    limit: int = 100,
    lease: timedelta = LEASE,
) -> SendCounts:
    """Settle interrupted sends, then send up to `limit` due replies. Safe to run in several processes."""
    run = _SendPass(db, settings, sender_factory, sent_folder_checker, now, gate, lease)
    run.recover_stale()
    for _ in range(limit):
        claimed = run.claim_next()
        if claimed is None:
            break
        try:
            run.send_one(claimed)
        except Exception:  # e.g. the database went away mid-item: the lease ends and the recovery settles it
            log.exception("reply %s: sending stopped unexpectedly; it is settled after its lease", claimed.item_id)
    if any(vars(run.counts).values()):
        log.info("send: %s", run.counts.line())
    return run.counts

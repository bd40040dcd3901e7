"""The send worker: approved replies out over SMTP, each exactly once.

    approved ─claim─▶ sending ──SMTP 250──▶ sent (+ outbound message, conversation waiting, Sent copy)
        │                 ├── 4xx / no connection ──▶ failed, retried after a backoff (then permanent)
        │                 ├── 5xx ──▶ failed for good, the server's reason on the conversation
        │                 └── answer lost after the mail was handed over ──▶ Sent folder? sent : unknown
        └─gate refuses the exact text─▶ blocked (never sent)
    sending for longer than the lease (the worker died) ──▶ Sent folder: found → sent;
        confirmed absent → retried; cannot tell → unknown (a human decides)

An item is claimed (`FOR UPDATE SKIP LOCKED` on PostgreSQL) and set to `sending` in a committed
transaction before SMTP is touched, so a crash can never lead to a blind second send. The reply's
Message-ID is fixed when it is queued, which is what makes the Sent-folder check possible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from engine import crypto
from engine.compliance import Verdict, blocked_message, check_reply
from engine.db.base import utcnow
from engine.db.models import (
    Conversation,
    ConversationStatus,
    Draft,
    DraftStatus,
    Mailbox,
    Message,
    Note,
    OutboxItem,
    OutboxState,
    Store,
)
from engine.db.session import Database
from engine.errors import ConfigError, MailboxError, SendError
from engine.send.smtp import MailSender, SendOutcomeUnknown, SmtpConfig, SmtpSender, build_reply_message
from engine.services import audit
from engine.services.stats_record import record_answers
from engine.settings import Settings
from engine.sync.imap import ImapConfig, ImapSource, MessageSource
from engine.sync.runner import imap_config

__all__ = ["LEASE", "MAX_ATTEMPTS", "SendCounts", "retry_delay", "send_pending", "smtp_config"]

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # longer than any SMTP exchange (30 s timeouts)
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)

SenderFactory = Callable[[SmtpConfig], MailSender]
SentFolderChecker = Callable[[ImapConfig], MessageSource]
Gate = Callable[..., Verdict]


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, ... minutes after the n-th failed attempt, capped at an hour."""
    return min(FIRST_RETRY * 2 ** max(0, attempts - 1), LONGEST_RETRY)


@dataclass
class SendCounts:
    sent: int = 0
    retrying: int = 0  # temporary failure, tried again later
    failed: int = 0  # permanent failure
    blocked: int = 0
    unknown: int = 0
    recovered: int = 0  # stale `sending` items settled through the Sent folder

    def line(self) -> str:
        return ", ".join(f"{value} {name}" for name, value in vars(self).items())


@dataclass(frozen=True)
class _Claimed:
    """Everything the SMTP exchange needs, read in the claiming transaction."""

    item_id: int
    message_id: str
    from_address: str
    to_address: str
    subject: str
    body: str
    in_reply_to: str | None
    references: tuple[str, ...]
    attempts: int
    smtp: SmtpConfig | None
    imap: ImapConfig | None
    sent_folder: str
    config_error: SendError | None


def smtp_config(mailbox: Mailbox, settings: Settings) -> SmtpConfig:
    if not mailbox.smtp_host:
        raise SendError(
            f"Mailbox {mailbox.name!r} has no SMTP server. Add it under Settings → Mailboxes; the reply is retried.",
            code="smtp_not_configured",
        )
    # No separate SMTP password stored: the account's IMAP password is used (the usual setup).
    password = crypto.decrypt(settings, mailbox.smtp_password_encrypted or mailbox.password_encrypted)
    return SmtpConfig(
        host=mailbox.smtp_host,
        port=mailbox.smtp_port,
        security=mailbox.smtp_security,
        username=mailbox.smtp_username or mailbox.username,
        password=password,
    )


def _default_sender(config: SmtpConfig) -> MailSender:
    return SmtpSender(config)


def _default_sent_folder(config: ImapConfig) -> MessageSource:
    return ImapSource(config)


def _note(session: Session, item: OutboxItem, text: str) -> None:
    session.add(Note(conversation_id=item.conversation_id, author_id=None, text=text))


def _lock_item(session: Session, item_id: int) -> OutboxItem:
    return session.scalars(
        select(OutboxItem).where(OutboxItem.id == item_id).with_for_update().execution_options(populate_existing=True)
    ).one()


def _take(session: Session, item: OutboxItem, *conditions: Any, **values: Any) -> bool:
    """Write `values` only if the row is still as we read it (state, attempts): a compare-and-set, so two
    workers can never both claim an item even without row locks (SQLite). PostgreSQL locks it anyway."""
    result = session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item.id, OutboxItem.state == item.state, OutboxItem.attempts == item.attempts)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    session.refresh(item)
    return True


def _snapshot(session: Session, item: OutboxItem, settings: Settings) -> _Claimed:
    mailbox = session.get(Mailbox, item.mailbox_id) if item.mailbox_id else None
    smtp = imap = None
    config_error: SendError | None = None
    if mailbox is None:
        config_error = SendError(
            "The store has no mailbox to send from. Add one under Settings → Mailboxes.", code="smtp_not_configured"
        )
    else:
        try:
            smtp = smtp_config(mailbox, settings)
            imap = imap_config(mailbox, settings)
        except SendError as exc:
            config_error = exc
        except ConfigError as exc:
            config_error = SendError(str(exc), code="credentials_unreadable")
    return _Claimed(
        item_id=item.id,
        message_id=item.message_id,
        from_address=item.from_address,
        to_address=item.to_address,
        subject=item.subject,
        body=item.body,
        in_reply_to=item.in_reply_to,
        references=tuple(item.references or ()),
        attempts=item.attempts,
        smtp=smtp,
        imap=imap,
        sent_folder=mailbox.sent_folder if mailbox else "Sent",
        config_error=config_error,
    )


def _mark_sent(session: Session, item: OutboxItem, now: datetime, *, how: str) -> None:
    before = {"state": item.state}
    item.state, item.sent_at, item.next_attempt_at, item.last_error, item.updated_at = (
        OutboxState.SENT,
        now,
        None,
        None,
        now,
    )
    conversation = session.get_one(Conversation, item.conversation_id)
    key = f"mid:{item.message_id}"
    if session.scalar(select(Message.id).where(Message.store_id == item.store_id, Message.dedupe_key == key)) is None:
        session.add(
            Message(
                store_id=item.store_id,
                conversation_id=conversation.id,
                mailbox_id=item.mailbox_id,
                direction="out",
                kind="reply",
                dedupe_key=key,
                message_id=item.message_id,
                subject=item.subject,
                from_address=item.from_address,
                to_address=item.to_address,
                body=item.body,
                received_at=now,
                source="reply",
                processed_at=now,
                attachments=[],
            )
        )
    draft = session.get(Draft, item.draft_id)
    if draft is not None:
        draft.status = DraftStatus.SENT
        draft.final_text = draft.final_text or item.body
    _reply_went_out(session, conversation, draft, now)
    record_answers(session, [conversation.id])
    audit.record(session, "outbox.sent", "outbox_item", item.id, before=before, after={"state": item.state, "how": how})


def _reply_went_out(session: Session, conversation: Conversation, draft: Draft | None, now: datetime) -> None:
    """Stop Amazon's clock, unless the buyer wrote again after the message this reply answers."""
    answered_up_to = draft.created_at if draft is not None else now
    if draft is not None and draft.message_id is not None:
        answered = session.get(Message, draft.message_id)
        answered_up_to = answered.received_at if answered is not None else answered_up_to
    newer = session.scalar(
        select(Message.received_at)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == "in",
            Message.kind == "buyer_message",
            Message.received_at > answered_up_to,
        )
        .order_by(Message.received_at)
        .limit(1)
    )
    conversation.last_message_at = max(filter(None, (conversation.last_message_at, now)))
    if newer is not None:
        conversation.awaiting_since = newer  # the deadline of the newer message keeps running
        return
    conversation.awaiting_since = conversation.amazon_deadline = conversation.internal_deadline = None
    if conversation.status not in (ConversationStatus.CLOSED,):
        conversation.status = ConversationStatus.WAITING


def _mark_failed(session: Session, item: OutboxItem, error: SendError, now: datetime) -> bool:
    """Record a failure; True when it will be retried."""
    before = {"state": item.state, "attempts": item.attempts}
    retry = not error.permanent and item.attempts < MAX_ATTEMPTS
    item.state, item.updated_at = OutboxState.FAILED, now
    item.next_attempt_at = now + retry_delay(item.attempts) if retry else None
    item.last_error = (
        str(error) if retry or error.permanent else (f"Gave up after {item.attempts} attempts. Last error: {error}")
    )
    if not retry:
        _note(session, item, f"Reply not sent: {item.last_error}")
    audit.record(
        session,
        "outbox.retry" if retry else "outbox.failed",
        "outbox_item",
        item.id,
        before=before,
        after={"state": item.state, "code": error.code, "reason": item.last_error},
    )
    return retry


def _mark_unknown(session: Session, item: OutboxItem, reason: str, now: datetime) -> None:
    before = {"state": item.state}
    item.state, item.next_attempt_at, item.updated_at = OutboxState.UNKNOWN, None, now
    item.last_error = reason
    _note(session, item, f"Reply may or may not have been delivered: {reason}")
    audit.record(
        session, "outbox.unknown", "outbox_item", item.id, before=before, after={"state": item.state, "reason": reason}
    )


def _in_sent_folder(claimed: _Claimed, checker: SentFolderChecker) -> tuple[bool | None, str]:
    """Whether the Sent folder holds the reply; None (with the reason) when it cannot be told."""
    if claimed.imap is None:
        return None, "no IMAP mailbox is configured to look in the Sent folder"
    try:
        with checker(claimed.imap) as folder:
            return folder.contains_message_id(claimed.sent_folder, claimed.message_id), ""
    except MailboxError as exc:
        return None, f"the Sent folder could not be searched ({exc})"


def _keep_copy(claimed: _Claimed, raw: bytes, checker: SentFolderChecker) -> None:
    if claimed.imap is None:
        return
    try:
        with checker(claimed.imap) as folder:
            folder.append(claimed.sent_folder, raw)
    except MailboxError as exc:
        # The reply is out; only the copy is missing (and with it the crash check for this reply).
        log.warning("reply %s sent, but no copy stored in %s: %s", claimed.message_id, claimed.sent_folder, exc)


def _recover_stale(
    db: Database, settings: Settings, checker: SentFolderChecker, now: datetime, lease: timedelta, counts: SendCounts
) -> None:
    cutoff = now - lease
    with db.transaction() as session:
        stale_ids = list(
            session.scalars(
                select(OutboxItem.id).where(OutboxItem.state == OutboxState.SENDING, OutboxItem.updated_at < cutoff)
            )
        )
    for item_id in stale_ids:
        with db.transaction() as session:
            item = session.scalar(
                select(OutboxItem)
                .where(OutboxItem.id == item_id, OutboxItem.state == OutboxState.SENDING)
                .where(OutboxItem.updated_at < cutoff)
                .with_for_update(skip_locked=True)
            )
            # Renew the lease while we look; the conditions guard SQLite, which has no row locks.
            if item is None or not _take(session, item, OutboxItem.updated_at < cutoff, updated_at=now):
                continue  # another worker is on it, or it moved on
            claimed = _snapshot(session, item, settings)
        found, reason = _in_sent_folder(claimed, checker)
        with db.transaction() as session:
            item = _lock_item(session, item_id)
            if item.state != OutboxState.SENDING:
                continue
            if found:
                _mark_sent(session, item, now, how="found in the Sent folder after an interruption")
                counts.recovered += 1
            elif found is None:
                _mark_unknown(
                    session,
                    item,
                    f"Sending was interrupted and {reason}. Check the Sent folder or the "
                    "buyer thread in Seller Central, then mark it sent or send it again.",
                    now,
                )
                counts.unknown += 1
            else:
                item.state, item.next_attempt_at, item.updated_at = OutboxState.FAILED, now, now
                item.last_error = "Sending was interrupted; the reply is not in the Sent folder, so it is retried."
                audit.record(session, "outbox.retry", "outbox_item", item.id, after={"reason": item.last_error})


def _claim_next(db: Database, settings: Settings, gate: Gate, now: datetime, counts: SendCounts) -> _Claimed | None:
    """Claim one due item and set it `sending` (committed), or settle it as blocked. None: nothing due."""
    while True:
        with db.transaction() as session:
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
            conversation = session.get_one(Conversation, item.conversation_id)
            draft = session.get(Draft, item.draft_id)
            store = session.get_one(Store, item.store_id)
            verdict = gate(
                item.body,
                buyer_language=conversation.language,
                reply_language=draft.language if draft is not None else None,
                allow_list=list(store.allow_list or ()),
            )
            if not verdict.allowed:
                before = {"state": item.state}
                item.state, item.next_attempt_at, item.updated_at = OutboxState.BLOCKED, None, now
                item.last_error = blocked_message(verdict)
                _note(session, item, item.last_error)
                audit.record(
                    session,
                    "outbox.blocked",
                    "outbox_item",
                    item.id,
                    before=before,
                    after={"state": item.state, "verdict": verdict.to_dict()},
                )
                counts.blocked += 1
                continue
            if not _take(session, item, state=OutboxState.SENDING, attempts=item.attempts + 1, updated_at=now):
                continue  # another worker claimed it between our read and our write (SQLite)
            return _snapshot(session, item, settings)


def _send_one(
    db: Database,
    claimed: _Claimed,
    sender_factory: SenderFactory,
    checker: SentFolderChecker,
    now: datetime,
    counts: SendCounts,
) -> None:
    message = build_reply_message(
        from_address=claimed.from_address,
        to_address=claimed.to_address,
        subject=claimed.subject,
        body=claimed.body,
        message_id=claimed.message_id,
        in_reply_to=claimed.in_reply_to,
        references=claimed.references,
        date=now,
    )
    error: SendError | None = claimed.config_error
    outcome_unknown = False
    if error is None and claimed.smtp is not None:
        try:
            sender_factory(claimed.smtp).send(message, sender=claimed.from_address, recipient=claimed.to_address)
        except SendOutcomeUnknown as exc:
            error, outcome_unknown = exc, True
        except SendError as exc:
            error = exc
    found: bool | None = None
    if outcome_unknown:
        found, _ = _in_sent_folder(claimed, checker)  # a provider may have filed it in Sent by itself
    with db.transaction() as session:
        item = _lock_item(session, claimed.item_id)
        if error is None or found:
            _mark_sent(session, item, now, how="smtp" if error is None else "found in the Sent folder")
            counts.sent += 1
        elif outcome_unknown:
            _mark_unknown(session, item, str(error), now)
            counts.unknown += 1
        elif _mark_failed(session, item, error, now):
            counts.retrying += 1
        else:
            counts.failed += 1
    if error is None:
        _keep_copy(claimed, message.as_bytes(), checker)


def send_pending(
    db: Database,
    settings: Settings,
    *,
    sender_factory: SenderFactory = _default_sender,
    sent_folder_checker: SentFolderChecker = _default_sent_folder,
    now: Callable[[], datetime] = utcnow,
    gate: Gate = check_reply,
    limit: int = 100,
    lease: timedelta = LEASE,
) -> SendCounts:
    """Settle interrupted sends, then send up to `limit` due replies. Safe to run in several processes."""
    counts = SendCounts()
    _recover_stale(db, settings, sent_folder_checker, now(), lease, counts)
    for _ in range(limit):
        claimed = _claim_next(db, settings, gate, now(), counts)
        if claimed is None:
            break
        _send_one(db, claimed, sender_factory, sent_folder_checker, now(), counts)
    if any(vars(counts).values()):
        log.info("send: %s", counts.line())
    return counts

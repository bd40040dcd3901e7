"""Sync & health: mailboxes and their last sync, recent sync runs, quarantined mail, outbox states and the
alerts a team lead must act on. Read-only queries; admins see every store, others their own. Retrying a
quarantined mail is `engine.sync.quarantine.retry_quarantined` (it may fetch from the server)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.orm import Session

from engine.db.models import (
    Conversation,
    ConversationStatus,
    Mailbox,
    Message,
    OutboxItem,
    OutboxState,
    QuarantinedMail,
    Store,
    SyncRun,
)
from engine.workflow.permissions import Action, Principal, Role, require

STALE_AFTER_INTERVALS = 5  # a mailbox not synced for this many sync intervals raises an alert


def _stores(principal: Principal, column: Any) -> ColumnElement[bool]:
    require(principal, Action.VIEW_QUEUE)
    if principal.role == Role.ADMIN:
        return literal(True)
    return column.in_(sorted(principal.store_ids) or [-1])


@dataclass(frozen=True)
class MailboxHealth:
    id: int
    store: str
    name: str
    enabled: bool
    last_synced_at: datetime | None
    lag: timedelta | None  # now - last sync
    newest_mail_at: datetime | None
    last_error_code: str | None
    last_error: str | None


@dataclass(frozen=True)
class SyncRunRow:
    id: int
    mailbox: str | None
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    fetched: int
    new: int
    duplicates: int
    unparsed: int
    errors: list[dict[str, object]]
    quarantined: int = 0


@dataclass(frozen=True)
class QuarantineRow:
    """A mail the sync could not store, waiting for a retry."""

    id: int
    store: str
    mailbox: str
    uid: int
    size: int
    reason: str
    raw_kept: bool  # False: a retry fetches it from the server again
    attempts: int
    created_at: datetime
    retried_at: datetime | None


@dataclass(frozen=True)
class Alert:
    level: str  # "error" or "warning"
    code: str  # stable id the UI translates: mailbox_error, sync_stale, outbox_failed, ...
    subject: str  # what it is about: a mailbox name, a state
    count: int = 1
    detail: str = ""  # the stored error text, shown as is


@dataclass(frozen=True)
class Health:
    mailboxes: list[MailboxHealth]
    runs: list[SyncRunRow]
    outbox: dict[str, int]  # state -> items
    overdue: int  # open conversations past Amazon's deadline
    unparsed: int  # mails kept raw because they did not parse
    alerts: list[Alert]
    quarantined: list[QuarantineRow] = field(default_factory=list)  # newest first, up to `quarantine_rows`


def quarantined_mail(session: Session, principal: Principal, *, limit: int = 100) -> list[QuarantineRow]:
    """Quarantined mail still waiting, newest first."""
    query = (
        select(QuarantinedMail, Mailbox.name, Store.name)
        .join(Mailbox, Mailbox.id == QuarantinedMail.mailbox_id)
        .join(Store, Store.id == QuarantinedMail.store_id)
        .where(_stores(principal, QuarantinedMail.store_id), QuarantinedMail.status == "waiting")
        .order_by(QuarantinedMail.created_at.desc(), QuarantinedMail.id.desc())
        .limit(limit)
    )
    return [
        QuarantineRow(
            q.id,
            store,
            mailbox,
            q.uid,
            q.size,
            q.reason,
            q.raw_sha256 is not None,
            q.attempts,
            q.created_at,
            q.retried_at,
        )
        for q, mailbox, store in session.execute(query)
    ]


def health(
    session: Session,
    principal: Principal,
    *,
    now: datetime,
    sync_interval_seconds: int = 60,
    runs: int = 20,
    quarantine_rows: int = 100,
) -> Health:
    mailboxes = [
        MailboxHealth(
            m.id,
            store,
            m.name,
            m.enabled,
            m.last_synced_at,
            now - m.last_synced_at if m.last_synced_at else None,
            m.newest_mail_at,
            m.last_error_code,
            m.last_error,
        )
        for m, store in session.execute(
            select(Mailbox, Store.name)
            .join(Store, Store.id == Mailbox.store_id)
            .where(_stores(principal, Mailbox.store_id))
            .order_by(Store.name, Mailbox.name)
        )
    ]
    recent = [
        SyncRunRow(
            r.id,
            name,
            r.kind,
            r.started_at,
            r.finished_at,
            r.status,
            r.fetched,
            r.new,
            r.duplicates,
            r.unparsed,
            list(r.errors or []),
            r.quarantined,
        )
        for r, name in session.execute(
            select(SyncRun, Mailbox.name)
            .outerjoin(Mailbox, Mailbox.id == SyncRun.mailbox_id)
            .where(_stores(principal, func.coalesce(SyncRun.store_id, Mailbox.store_id)))
            .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
            .limit(runs)
        )
    ]
    outbox = dict(
        session.execute(
            select(OutboxItem.state, func.count(OutboxItem.id))
            .where(_stores(principal, OutboxItem.store_id))
            .group_by(OutboxItem.state)
        ).all()
    )
    overdue = (
        session.scalar(
            select(func.count(Conversation.id)).where(
                _stores(principal, Conversation.store_id),
                Conversation.status.in_((ConversationStatus.OPEN, ConversationStatus.HOLD)),
                Conversation.amazon_deadline < now,
            )
        )
        or 0
    )
    unparsed = (
        session.scalar(
            select(func.count(Message.id)).where(_stores(principal, Message.store_id), Message.kind == "unparsed")
        )
        or 0
    )
    waiting = (
        session.scalar(
            select(func.count(QuarantinedMail.id)).where(
                _stores(principal, QuarantinedMail.store_id), QuarantinedMail.status == "waiting"
            )
        )
        or 0
    )
    return Health(
        mailboxes,
        recent,
        {str(k): int(v) for k, v in outbox.items()},
        overdue,
        unparsed,
        alerts(
            mailboxes,
            outbox,
            overdue,
            unparsed,
            stale_after=timedelta(seconds=sync_interval_seconds) * STALE_AFTER_INTERVALS,
            quarantined=waiting,
        )
        + _webhook_alerts(session, principal),
        quarantined_mail(session, principal, limit=quarantine_rows),
    )


def _webhook_alerts(session: Session, principal: Principal) -> list[Alert]:
    from engine.integrations.webhooks import disabled_by_failures

    if principal.role != Role.ADMIN:  # endpoints span stores: only admins manage them
        return []
    return [Alert("error", "webhook_disabled", url, 1, reason) for _id, url, reason in disabled_by_failures(session)]


def alerts(
    mailboxes: list[MailboxHealth],
    outbox: dict[str, int],
    overdue: int,
    unparsed: int,
    *,
    stale_after: timedelta,
    quarantined: int = 0,
) -> list[Alert]:
    """What needs a human, most serious first (pure)."""
    found: list[Alert] = []
    for box in mailboxes:
        if not box.enabled:
            continue
        if box.last_error_code or box.last_error:
            found.append(Alert("error", "mailbox_error", f"{box.store} / {box.name}", 1, box.last_error or ""))
        if box.lag is None or box.lag > stale_after:
            found.append(Alert("warning", "sync_stale", f"{box.store} / {box.name}"))
    outbox_levels = ((OutboxState.UNKNOWN, "error"), (OutboxState.FAILED, "error"), (OutboxState.BLOCKED, "warning"))
    for state, level in outbox_levels:
        if outbox.get(state, 0):
            found.append(Alert(level, f"outbox_{state}", str(state), outbox[state]))
    if overdue:
        found.append(Alert("error", "overdue", "queue", overdue))
    if quarantined:
        found.append(Alert("error", "quarantined", "mail", quarantined))
    if unparsed:
        found.append(Alert("warning", "unparsed", "mail", unparsed))
    return sorted(found, key=lambda a: a.level != "error")

"""Mailboxes: adding and changing them with encrypted credentials, and what the settings page shows.

Passwords go in encrypted (`engine.crypto`) and never come out of this module: views carry only a
masked form. Moving a mailbox to another server, account or folder resets its sync high-water mark
(the old UIDs mean nothing there); mails already stored are recognised and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import crypto
from engine.db.base import utcnow
from engine.db.models import Mailbox, OutboxItem, OutboxState, Store
from engine.errors import ConfigError, InputError
from engine.settings import Settings
from engine.sync.runner import LAG_THRESHOLD, mailbox_lag

__all__ = [
    "EDITABLE_FIELDS",
    "MailboxView",
    "add_mailbox",
    "list_mailboxes",
    "mailbox_view",
    "outbox_counts",
    "update_mailbox",
]

SECURITY_MODES = ("ssl", "starttls", "none")
# Changing any of these points the mailbox at different mail: the high-water mark starts over.
_LOCATION_FIELDS = frozenset({"imap_host", "imap_port", "username", "folder"})
EDITABLE_FIELDS = frozenset(
    {
        "name",
        "enabled",
        "imap_host",
        "imap_port",
        "imap_security",
        "username",
        "folder",
        "sent_folder",
        "smtp_host",
        "smtp_port",
        "smtp_security",
        "smtp_username",
    }
)


@dataclass(frozen=True)
class MailboxView:
    id: int
    store_id: int
    store: str
    name: str
    enabled: bool
    imap: str  # "user@host:port (ssl) INBOX"
    smtp: str | None
    password: str  # "set, ends ••••yz" (set, and its last 2 characters); "" when none is set
    last_synced_at: datetime | None
    newest_mail_at: datetime | None
    lag_minutes: int | None  # minutes since the last successful sync
    alert: str | None
    last_error_code: str | None
    last_error: str | None
    outbox: dict[str, int]


def _validate(values: dict[str, Any]) -> None:
    for key in ("imap_security", "smtp_security"):
        if key in values and values[key] not in SECURITY_MODES:
            raise InputError(f"{key.replace('_', ' ')} must be ssl, starttls or none, not {values[key]!r}.")
    for key in ("imap_port", "smtp_port"):
        if key in values and not (isinstance(values[key], int) and 0 < values[key] < 65536):
            raise InputError(f"{key.replace('_', ' ')} must be a port number (1–65535), not {values[key]!r}.")
    for key in ("imap_host", "username", "name", "folder"):
        if key in values and not str(values[key] or "").strip():
            raise InputError(f"The mailbox {key.replace('_', ' ')} cannot be empty.")


def add_mailbox(
    session: Session,
    settings: Settings,
    store: Store,
    *,
    name: str,
    imap_host: str,
    username: str,
    password: str,
    imap_port: int = 993,
    imap_security: str = "ssl",
    folder: str = "INBOX",
    sent_folder: str = "Sent",
    smtp_host: str | None = None,
    smtp_port: int = 587,
    smtp_security: str = "starttls",
    smtp_username: str | None = None,
    smtp_password: str | None = None,
) -> Mailbox:
    """Add a mailbox. Without an SMTP password of its own, sending uses the IMAP password."""
    values: dict[str, Any] = {
        "name": name,
        "imap_host": imap_host,
        "imap_port": imap_port,
        "imap_security": imap_security,
        "username": username,
        "folder": folder,
        "sent_folder": sent_folder,
        "smtp_host": smtp_host or None,
        "smtp_port": smtp_port,
        "smtp_security": smtp_security,
        "smtp_username": smtp_username or None,
    }
    _validate(values)
    if not password:
        raise InputError("The mailbox password cannot be empty (use an app password where the provider needs one).")
    if session.scalar(select(Mailbox.id).where(Mailbox.store_id == store.id, Mailbox.name == name)) is not None:
        raise InputError(f"Store {store.name!r} already has a mailbox named {name!r}. Pick another name.")
    mailbox = Mailbox(
        store_id=store.id,
        enabled=True,
        password_encrypted=crypto.encrypt(settings, password),
        smtp_password_encrypted=crypto.encrypt(settings, smtp_password or ""),
        last_uid=0,
        **values,
    )
    session.add(mailbox)
    session.flush()
    return mailbox


def update_mailbox(
    session: Session,
    settings: Settings,
    mailbox_id: int,
    *,
    password: str | None = None,
    smtp_password: str | None = None,
    **changes: Any,
) -> Mailbox:
    """Change settings; a password of None keeps the stored one. Unknown fields are refused."""
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is None:
        raise InputError(f"No mailbox with id {mailbox_id}.")
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise InputError(f"Cannot change {', '.join(sorted(unknown))} of a mailbox.")
    _validate(changes)
    moved = any(key in _LOCATION_FIELDS and getattr(mailbox, key) != value for key, value in changes.items())
    for key, value in changes.items():
        setattr(mailbox, key, value)
    if moved:
        mailbox.uidvalidity, mailbox.last_uid = None, 0
    if password:
        mailbox.password_encrypted = crypto.encrypt(settings, password)
    if smtp_password is not None:
        mailbox.smtp_password_encrypted = crypto.encrypt(settings, smtp_password)
    if moved or password:
        # The next sync tells whether the fix worked; until then the old error would only mislead.
        mailbox.last_error_code = mailbox.last_error = None
    session.flush()
    return mailbox


def _masked_password(settings: Settings, mailbox: Mailbox) -> str:
    try:
        return crypto.mask_secret(crypto.decrypt(settings, mailbox.password_encrypted))
    except ConfigError:
        return "(unreadable: re-enter the password)"


def outbox_counts(session: Session, *, mailbox_id: int | None = None, store_id: int | None = None) -> dict[str, int]:
    """Outbox items per state (every state present, zero when none)."""
    query = select(OutboxItem.state, func.count()).group_by(OutboxItem.state)
    if mailbox_id is not None:
        query = query.where(OutboxItem.mailbox_id == mailbox_id)
    if store_id is not None:
        query = query.where(OutboxItem.store_id == store_id)
    counts = {state.value: 0 for state in OutboxState}
    for state, count in session.execute(query):
        counts[state] = count
    return counts


def mailbox_view(session: Session, settings: Settings, mailbox: Mailbox, now: datetime | None = None) -> MailboxView:
    now = now or utcnow()
    lag = mailbox_lag(mailbox, now)
    smtp = None
    if mailbox.smtp_host:
        smtp = f"{mailbox.smtp_username or mailbox.username}@{mailbox.smtp_host}:{mailbox.smtp_port} "
        smtp += f"({mailbox.smtp_security})"
    return MailboxView(
        id=mailbox.id,
        store_id=mailbox.store_id,
        store=mailbox.store.name,
        name=mailbox.name,
        enabled=mailbox.enabled,
        imap=f"{mailbox.username}@{mailbox.imap_host}:{mailbox.imap_port} ({mailbox.imap_security}) {mailbox.folder}",
        smtp=smtp,
        password=_masked_password(settings, mailbox),
        last_synced_at=mailbox.last_synced_at,
        newest_mail_at=mailbox.newest_mail_at,
        lag_minutes=int(lag.sync_age.total_seconds() // 60) if lag.sync_age is not None else None,
        alert=lag.alert(LAG_THRESHOLD) if mailbox.enabled else None,
        last_error_code=mailbox.last_error_code,
        last_error=mailbox.last_error,
        outbox=outbox_counts(session, mailbox_id=mailbox.id),
    )


def list_mailboxes(
    session: Session, settings: Settings, *, store_id: int | None = None, now: datetime | None = None
) -> list[MailboxView]:
    query = select(Mailbox).order_by(Mailbox.store_id, Mailbox.name)
    if store_id is not None:
        query = query.where(Mailbox.store_id == store_id)
    return [mailbox_view(session, settings, mailbox, now) for mailbox in session.scalars(query)]

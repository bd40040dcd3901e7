"""Mailboxes as admins manage them on the Settings page: the same operations as `engine.services.mailboxes`
(which the CLI uses), with the permission check, an audit event (never a password) and a connection test
that says what is wrong before the worker's next sync would."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine.db.models import Mailbox, Store
from engine.errors import InputError
from engine.services import audit
from engine.services.mailboxes import (
    EDITABLE_FIELDS,
    MailboxView,
    add_mailbox,
    list_mailboxes,
    mailbox_view,
    update_mailbox,
)
from engine.settings import Settings
from engine.sync.imap import ImapSource
from engine.sync.runner import imap_config
from engine.workflow.permissions import Action, Principal, require

# What the audit trail keeps of a mailbox is what an admin can change: where it points, never its secrets.
_AUDITED = sorted(EDITABLE_FIELDS)
CONNECTION_TIMEOUT = 10.0  # seconds: the admin is waiting on the page


def store_mailboxes(session: Session, principal: Principal, settings: Settings) -> list[MailboxView]:
    require(principal, Action.MANAGE_STORES)
    return list_mailboxes(session, settings)


def add_store_mailbox(
    session: Session, principal: Principal, settings: Settings, store_id: int, **fields: Any
) -> MailboxView:
    """Add a mailbox to a store (fields as `add_mailbox` takes them); passwords are stored encrypted."""
    require(principal, Action.MANAGE_STORES, store_id=store_id)
    store = session.get(Store, store_id)
    if store is None:
        raise InputError(f"Store {store_id} does not exist (any more); reload the page.")
    mailbox = add_mailbox(session, settings, store, **fields)
    audit.record(session, "mailbox.add", "mailbox", mailbox.id, actor_id=principal.agent_id, after=_audited(mailbox))
    return mailbox_view(session, settings, mailbox)


def change_mailbox(
    session: Session,
    principal: Principal,
    settings: Settings,
    mailbox_id: int,
    *,
    password: str | None = None,
    smtp_password: str | None = None,
    **changes: Any,
) -> MailboxView:
    """Change a mailbox; an empty or None password keeps the stored one."""
    mailbox = _mailbox(session, principal, mailbox_id)
    before = _audited(mailbox)
    update_mailbox(
        session, settings, mailbox_id, password=password or None, smtp_password=smtp_password or None, **changes
    )
    after = _audited(mailbox)
    if password:
        after["password"] = "changed"
    if smtp_password:
        after["smtp_password"] = "changed"
    audit.record(
        session, "mailbox.update", "mailbox", mailbox.id, actor_id=principal.agent_id, before=before, after=after
    )
    return mailbox_view(session, settings, mailbox)


def check_connection(session: Session, principal: Principal, settings: Settings, mailbox_id: int) -> str:
    """Sign in to the mailbox's IMAP server and open its folder, read-only. Returns what was found; raises
    `MailboxError` with the same codes and advice as a failing sync (wrong password, TLS, unreachable ...)."""
    mailbox = _mailbox(session, principal, mailbox_id)
    config = imap_config(mailbox, settings, timeout=CONNECTION_TIMEOUT)
    with ImapSource(config) as source:
        state = source.select_folder(mailbox.folder)
    return f"Signed in to {config.where} as {mailbox.username}; {mailbox.folder} holds {state.exists} mails."


def _mailbox(session: Session, principal: Principal, mailbox_id: int) -> Mailbox:
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is None:
        raise InputError(f"Mailbox {mailbox_id} does not exist (any more); reload the page.")
    require(principal, Action.MANAGE_STORES, store_id=mailbox.store_id)
    return mailbox


def _audited(mailbox: Mailbox) -> dict[str, Any]:
    return {field: getattr(mailbox, field) for field in _AUDITED}

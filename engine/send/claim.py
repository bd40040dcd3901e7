"""A claimed outbox item: what the send needs (read in the claiming transaction), the compare-and-set
that guards the claim, and the lease kept alive while the send runs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import crypto
from engine.db.models import Mailbox, OutboxItem, OutboxState
from engine.db.session import Database
from engine.errors import ConfigError, SendError
from engine.send.smtp import SmtpConfig
from engine.settings import Settings
from engine.sync.imap import ImapConfig
from engine.sync.runner import imap_config

__all__ = ["Claimed", "LeaseKeeper", "lock_item", "mine", "smtp_config", "snapshot", "take"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """Everything the SMTP exchange needs, read in the claiming transaction."""

    item_id: int
    attempts: int  # with the state, what identifies this claim: a compare-and-set token
    message_id: str
    from_address: str
    to_address: str
    subject: str
    body: str
    in_reply_to: str | None
    references: tuple[str, ...]
    mailbox_id: int | None
    smtp: SmtpConfig | None
    imap: ImapConfig | None
    sent_folder: str
    files_sent_mail: bool | None
    handed_over: bool
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
        ca_file=settings.ca_file,
    )


def mine(item_id: int, attempts: int) -> tuple[Any, ...]:
    """Conditions that hold only while this worker's claim on the item stands."""
    return (OutboxItem.id == item_id, OutboxItem.state == OutboxState.SENDING, OutboxItem.attempts == attempts)


def lock_item(session: Session, item_id: int) -> OutboxItem:
    return session.scalars(
        select(OutboxItem).where(OutboxItem.id == item_id).with_for_update().execution_options(populate_existing=True)
    ).one()


def take(session: Session, item: OutboxItem, *conditions: Any, **values: Any) -> bool:
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


def snapshot(session: Session, item: OutboxItem, settings: Settings) -> Claimed:
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
        except Exception as exc:  # a damaged mailbox row must not stop the other replies
            config_error = SendError(
                f"The mailbox settings cannot be used ({type(exc).__name__}: {exc}). Check the mailbox under "
                "Settings → Mailboxes; the reply is retried.",
                code="mailbox_unusable",
            )
    return Claimed(
        item_id=item.id,
        attempts=item.attempts,
        message_id=item.message_id,
        from_address=item.from_address,
        to_address=item.to_address,
        subject=item.subject,
        body=item.body,
        in_reply_to=item.in_reply_to,
        references=tuple(item.references or ()),
        mailbox_id=mailbox.id if mailbox else None,
        smtp=smtp,
        imap=imap,
        sent_folder=mailbox.sent_folder if mailbox else "Sent",
        files_sent_mail=mailbox.files_sent_mail if mailbox else None,
        handed_over=item.handed_over_at is not None,
        config_error=config_error,
    )


class LeaseKeeper:
    """Renews the claim's lease from a thread while a send runs, so a slow send is never taken for a dead one."""

    def __init__(self, db: Database, claimed: Claimed, now: Callable[[], datetime], lease: timedelta) -> None:
        self._db, self._claimed, self._now, self._lease = db, claimed, now, lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{claimed.item_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = max(self._lease.total_seconds() / 4, 0.05)
        while not self._stop.wait(interval):
            try:
                with self._db.transaction() as session:
                    session.execute(
                        update(OutboxItem)
                        .where(*mine(self._claimed.item_id, self._claimed.attempts))
                        .values(lease_until=self._now() + self._lease)
                        .execution_options(synchronize_session=False)
                    )
            except Exception:  # the next renewal tries again; the lease has three more quarters to go
                log.warning("could not renew the lease of reply %s", self._claimed.item_id, exc_info=True)

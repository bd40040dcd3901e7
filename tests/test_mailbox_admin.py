"""Mailboxes from the Settings page, through the service against a real Dovecot: added and changed only by
admins, audited without secrets, and a connection test that reports what a sync would."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import AuditEvent, Mailbox
from engine.errors import MailboxError, PermissionDenied
from engine.services.agents import NewPassword, create_agent, principal_for
from engine.services.mailbox_admin import add_store_mailbox, change_mailbox, check_connection, store_mailboxes
from engine.services.stores import ensure_store
from engine.settings import Settings
from engine.sync.imap import AUTH_FAILED
from engine.workflow.permissions import Principal, Role
from tests.servers import DovecotServer, dovecot_fixture, relay_mails  # noqa: F401


def _admin(session: Session) -> Principal:
    return principal_for(create_agent(session, "ada", password=NewPassword.of("correct horse"), role=Role.ADMIN))


def test_an_admin_adds_a_mailbox_tests_it_and_fixes_its_password(
    session: Session, settings: Settings, dovecot: DovecotServer
) -> None:
    admin = _admin(session)
    store = ensure_store(session, "EU")
    user = dovecot.new_user()
    dovecot.append(user, relay_mails(3))
    view = add_store_mailbox(
        session, admin, settings, store.id, name="relay", imap_host=dovecot.host, imap_port=dovecot.port,
        imap_security="none", username=user.name, password="not-the-password",
    )  # fmt: skip
    assert view.store == "EU" and view.enabled and "not-the-password" not in view.password
    with pytest.raises(MailboxError) as refused:
        check_connection(session, admin, settings, view.id)
    assert refused.value.code == AUTH_FAILED

    change_mailbox(session, admin, settings, view.id, password=user.password, smtp_password="")
    assert check_connection(session, admin, settings, view.id).endswith("INBOX holds 3 mails.")
    change_mailbox(session, admin, settings, view.id, enabled=False, password="")  # empty keeps the password
    assert check_connection(session, admin, settings, view.id).endswith("INBOX holds 3 mails.")
    assert [b.enabled for b in store_mailboxes(session, admin, settings)] == [False]

    events = session.scalars(select(AuditEvent).where(AuditEvent.entity == "mailbox").order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["mailbox.add", "mailbox.update", "mailbox.update"]
    assert events[1].after is not None and events[1].after["password"] == "changed"
    assert "smtp_password" not in events[1].after  # an empty SMTP password keeps the stored one
    recorded = " ".join(str(e.before) + str(e.after) for e in events)
    assert user.password not in recorded and "not-the-password" not in recorded
    mailbox = session.get(Mailbox, view.id)
    assert mailbox is not None and user.password not in mailbox.password_encrypted


def test_leads_cannot_see_or_change_mailboxes(session: Session, settings: Settings) -> None:
    store = ensure_store(session, "EU")
    lead = principal_for(
        create_agent(session, "lee", password=NewPassword.of("correct horse"), role=Role.LEAD, stores=[store])
    )
    with pytest.raises(PermissionDenied):
        store_mailboxes(session, lead, settings)
    with pytest.raises(PermissionDenied):
        add_store_mailbox(
            session, lead, settings, store.id, name="relay", imap_host="127.0.0.1", username="x", password="y"
        )

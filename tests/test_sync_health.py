"""Quarantined mail on *Sync & health*: listed with its reason and an alert, and retried from the page."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from engine.db import Database
from engine.db.models import Mailbox, Message, QuarantinedMail, RawMail, Store, SyncRun
from engine.services.health import alerts, health
from engine.services.mailboxes import add_mailbox
from engine.settings import Settings
from engine.workflow.permissions import Principal, Role
from tests.servers import relay_mails

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def _quarantine_one(db: Database) -> tuple[int, int, bytes]:
    raw = relay_mails(1)[0]
    digest = hashlib.sha256(raw).hexdigest()
    with db.transaction() as session:
        store = session.scalars(select(Store).order_by(Store.id)).first()
        assert store is not None
        mailbox = add_mailbox(
            session, Settings.from_env(), store, name="relay-q", imap_host="imap.example", username="u", password="p"
        )
        mailbox.uidvalidity = 7
        session.add(RawMail(sha256=digest, size=len(raw), content=raw))
        session.flush()
        row = QuarantinedMail(
            store_id=store.id,
            mailbox_id=mailbox.id,
            uidvalidity=7,
            uid=42,
            size=len(raw),
            reason="could not be stored as parsed (DataError: value too long)",
            raw_sha256=digest,
            status="waiting",
            attempts=0,
        )
        session.add(row)
        session.add(SyncRun(kind="imap", store_id=store.id, mailbox_id=mailbox.id, status="partial", quarantined=1))
        session.flush()
        return row.id, mailbox.id, raw


def test_health_lists_quarantined_mail_and_raises_an_alert(app_env: Database) -> None:
    quarantine_id, _, _ = _quarantine_one(app_env)
    admin = Principal(agent_id=1, role=Role.ADMIN, store_ids=frozenset())
    with app_env.read() as session:
        report = health(session, admin, now=datetime.now(UTC))
    [row] = report.quarantined
    assert (row.id, row.uid, row.mailbox, row.raw_kept) == (quarantine_id, 42, "relay-q", True)
    assert any(a.code == "quarantined" and a.count == 1 and a.level == "error" for a in report.alerts)
    assert report.runs[0].quarantined == 1
    assert not any(a.code == "quarantined" for a in alerts([], {}, 0, 0, stale_after=timedelta(minutes=5)))


def test_retry_from_the_health_page_stores_the_mail(app_env: Database) -> None:
    quarantine_id, mailbox_id, _ = _quarantine_one(app_env)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input(key="login_username").input("admin")
    at.text_input(key="login_password").input("demo-admin")
    at.form_submit_button[0].click().run()
    at.switch_page("app_pages/health.py").run()
    assert not at.exception, at.exception
    assert any("wait in quarantine" in e.value for e in at.error)

    at.selectbox[0].select(quarantine_id)
    next(b for b in at.button if b.label == "Retry").click().run()

    assert not at.exception, at.exception
    assert any("Stored as message #" in s.value for s in at.success)
    with app_env.read() as session:
        row = session.get_one(QuarantinedMail, quarantine_id)
        assert (row.status, row.attempts) == ("stored", 1)
        message = session.get_one(Message, row.message_row_id)
        assert message.mailbox_id == mailbox_id and message.source == "imap:relay-q:7:42"
        assert session.get_one(Mailbox, mailbox_id).name == "relay-q"

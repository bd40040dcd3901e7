"""The Integrations page (admins), driven by AppTest on a small database of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from engine.db import Database
from engine.db.models import Agent, AuditEvent, WebhookEndpoint
from engine.services.stores import ensure_store
from engine.ui import state
from engine.workflow.permissions import Role
from tests.conftest import REPO_ROOT

APP = str(REPO_ROOT / "streamlit_app.py")


@pytest.fixture
def page_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'replydesk.db'}"
    monkeypatch.setenv("REPLYDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REPLYDESK_DATABASE_URL", url)
    monkeypatch.setenv("REPLYDESK_NLP", "fake")
    db = Database(url)
    db.migrate()
    with db.transaction() as session:
        ensure_store(session, "Demo Europe")
        for username, role in (("admin", Role.ADMIN), ("lead", Role.LEAD)):
            session.add(Agent(username=username, display_name=username, role=role, languages=[], intent_groups=[]))
    yield db
    db.dispose()


def _as(db: Database, username: str) -> AppTest:
    """The app with `username` signed in (the session state sign-in leaves)."""
    with db.read() as session:
        agent_id = session.scalars(select(Agent.id).where(Agent.username == username)).one()
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[state.AGENT_ID] = agent_id
    at.session_state[state.GENERATION] = 0
    return at.run()


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(page_db: Database) -> None:
    at = _as(page_db, "admin")
    at.switch_page("app_pages/integrations.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Integrations"
    at.text_input[0].input("https://erp.example.com/hooks/replydesk")
    at.multiselect[0].set_value(["reply.sent", "sla.breached"])
    at.multiselect[1].set_value(["Demo Europe"])
    at.checkbox[0].check()
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["The signing secret, shown only now: give it to the receiver."]
    secret = at.code[0].value
    assert secret.startswith("whsec_")
    with page_db.read() as session:
        endpoint = session.scalars(select(WebhookEndpoint)).one()
        assert (endpoint.url, endpoint.events, endpoint.include_text, len(endpoint.store_ids)) == (
            "https://erp.example.com/hooks/replydesk",
            ["reply.sent", "sla.breached"],
            True,
            1,
        )
        assert secret not in endpoint.secret_encrypted  # only the encrypted form is stored
        assert session.scalar(select(AuditEvent.action).where(AuditEvent.entity == "webhook_endpoint")) == "webhook.add"
    at.run()  # the next run lists the endpoint; the secret is not shown again
    assert at.code == [] or all(not c.value.startswith("whsec_") for c in at.code)
    assert any("erp.example.com" in e.label for e in at.expander)


def test_a_bad_url_is_refused_with_what_to_do(page_db: Database) -> None:
    at = _as(page_db, "admin")
    at.switch_page("app_pages/integrations.py").run()
    at.text_input[0].input("ftp://erp")
    next(b for b in at.button if b.label == "Save").click().run()
    assert "is not an http(s) URL" in at.error[0].value
    with page_db.read() as session:
        assert session.scalars(select(WebhookEndpoint)).all() == []


def test_leads_cannot_open_the_integrations_page(page_db: Database) -> None:
    at = _as(page_db, "lead")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/integrations.py")

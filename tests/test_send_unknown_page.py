"""The conversation page for a reply whose delivery is unknown: a banner and one click to decide."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from engine.db import Database
from engine.db.models import AuditEvent, OutboxItem, OutboxState
from tests.test_app_pages import _compliant_draft, open_conversation, send_button, signed_in

REASON = "The connection broke after the reply was handed over."


def _unknown_reply(db: Database) -> tuple[AppTest, int]:
    """Approve a draft on the page, then leave its send undecided as the worker would; the page shows it again."""
    conversation_id, draft_id = _compliant_draft(db)
    at = open_conversation(signed_in("agent", "demo-agent"), conversation_id)
    send_button(at).click().run()
    assert not at.exception, at.exception
    with db.transaction() as session:
        item = session.scalars(select(OutboxItem).where(OutboxItem.draft_id == draft_id)).one()
        item.state, item.attempts, item.last_error = OutboxState.UNKNOWN, 1, REASON
        item_id = item.id
    at.run()
    assert not at.exception, at.exception
    return at, item_id


@pytest.mark.parametrize(
    ("button", "state", "action"),
    [
        ("outbox_sent_{id}", OutboxState.SENT, "outbox.sent"),
        ("outbox_again_{id}", OutboxState.APPROVED, "outbox.send_again"),
    ],
)
def test_an_unknown_reply_shows_a_banner_and_is_decided_in_one_click(
    app_env: Database, button: str, state: OutboxState, action: str
) -> None:
    at, item_id = _unknown_reply(app_env)
    assert any(f"Reply #{item_id} may or may not have reached the buyer" in w.value for w in at.warning)
    assert any(REASON in t.value for t in at.text)

    at.button(key=button.format(id=item_id)).click().run()
    assert not at.exception, at.exception
    with app_env.transaction() as session:
        assert session.get_one(OutboxItem, item_id).state == state
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.entity_id == item_id)
        ).one()
        assert event.actor_id is not None
    assert not any("may or may not have reached" in w.value for w in at.warning)

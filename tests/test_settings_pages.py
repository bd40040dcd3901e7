"""The Routing and Settings pages, the conversation's tags and the sidebar's availability switch, driven by
AppTest against a private copy of the demo: what the user does on the page lands in the database."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from engine.db import Database
from engine.db.models import Agent, Conversation, ConversationStatus, Mailbox, Store, TeamSetting
from engine.services.routing import ROUTING_SETTING
from engine.ui import i18n
from tests.test_app_pages import open_buttons, open_conversation, signed_in


def _routing_page(language: str = "en") -> AppTest:
    at = signed_in("lead", "demo-lead")
    at.session_state["ui_language"] = language
    at.switch_page("app_pages/routing.py").run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_lead_opens_the_routing_rules_seeded_from_the_file(app_env: Database, language: str) -> None:
    at = _routing_page(language)
    assert at.title[0].value == i18n.t("routing.title", language)
    assert at.checkbox[0].value is True  # language_required in knowledge/routing.json
    assert at.error == []


def test_saving_routing_rules_stores_them_and_reprioritises_the_queue(app_env: Database) -> None:
    at = _routing_page()
    at.checkbox[0].uncheck()
    at.button[0].click().run()  # the form's submit button: the table as shipped, language rule relaxed
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["Routing rules saved; waiting conversations re-prioritised."]
    with app_env.transaction() as session:
        saved = session.get(TeamSetting, ROUTING_SETTING)
        assert saved is not None and saved.value["language_required"] is False
        assert saved.value["intent_groups"]["return_refund"] == "returns"
        assert saved.value["priority"] == {"cancel_order": 10, "damaged_defective": 10}
        lead = session.scalars(select(Agent).where(Agent.username == "lead")).one()
        assert saved.updated_by_id == lead.id


def test_agents_cannot_open_the_routing_page(app_env: Database) -> None:
    at = signed_in("agent", "demo-agent")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/routing.py")


def _settings_page() -> AppTest:
    at = signed_in("admin", "demo-admin")
    at.switch_page("app_pages/settings.py").run()
    assert not at.exception, at.exception
    return at


def test_an_admin_sets_a_store_target_and_business_hours(app_env: Database) -> None:
    at = _settings_page()
    store_id = at.selectbox(key="sla_store").value
    at.number_input[0].set_value(240)
    next(c for c in at.checkbox if c.label == "Count only business hours").check()
    at.time_input(key=f"sla_{store_id}_mon_open").set_value(time(8, 30))
    at.checkbox(key=f"sla_{store_id}_sat").check()
    at.time_input(key=f"sla_{store_id}_sat_open").set_value(time(10, 0))
    at.time_input(key=f"sla_{store_id}_sat_close").set_value(time(14, 0))
    next(t for t in at.text_area if t.label.startswith("Holidays")).input("2026-12-25\n2026-12-26")
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["Saved; internal deadlines recomputed."]
    with app_env.transaction() as session:
        store = session.get(Store, store_id)
        assert store is not None and store.internal_target_minutes == 240
        assert store.business_calendar is not None
        assert store.business_calendar["hours"]["mon"] == ["08:30", "18:00"]
        assert store.business_calendar["hours"]["sat"] == ["10:00", "14:00"]
        assert "sun" not in store.business_calendar["hours"]
        assert store.business_calendar["holidays"] == ["2026-12-25", "2026-12-26"]
        waiting = session.scalars(
            select(Conversation).where(
                Conversation.store_id == store_id,
                Conversation.status == ConversationStatus.OPEN,
                Conversation.awaiting_since.is_not(None),
            )
        ).all()
        assert waiting and all(c.internal_deadline is not None for c in waiting)


def test_a_bad_holiday_is_shown_and_nothing_is_saved(app_env: Database) -> None:
    at = _settings_page()
    store_id = at.selectbox(key="sla_store").value
    at.number_input[0].set_value(60)
    next(c for c in at.checkbox if c.label == "Count only business hours").check()
    next(t for t in at.text_area if t.label.startswith("Holidays")).input("Christmas")
    next(b for b in at.button if b.label == "Save").click().run()
    assert any("Christmas" in e.value for e in at.error)
    with app_env.transaction() as session:
        store = session.get(Store, store_id)
        assert store is not None and store.internal_target_minutes is None


def test_an_admin_edits_an_agents_skills_and_capacity(app_env: Database) -> None:
    at = _settings_page()
    with app_env.transaction() as session:
        agent_id = session.scalars(select(Agent.id).where(Agent.username == "agent")).one()
    at.selectbox(key="edit_agent").set_value(agent_id).run()
    form_inputs = [n for n in at.number_input if n.label.startswith("Capacity")]
    form_inputs[0].set_value(7)
    next(m for m in at.multiselect if m.label.startswith("Skill groups")).select("returns")
    next(b for b in at.button if b.label == "Save" and "agent_edit" in str(b.form_id)).click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["Account saved."]
    with app_env.transaction() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None and (agent.capacity, agent.intent_groups) == (7, ["returns"])


def test_an_agent_tags_a_conversation_and_filters_the_queue_by_it(app_env: Database) -> None:
    at = signed_in("agent", "demo-agent")
    conversation_id = open_buttons(at)[0]
    open_conversation(at, conversation_id)
    at.multiselect(key="tags_edit").set_value(["VIP customer"])
    next(b for b in at.button if b.label == "Save tags").click().run()
    assert not at.exception, at.exception
    with app_env.transaction() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None and conversation.tags == ["vip-customer"]
    at.switch_page("app_pages/queue.py").run()
    at.selectbox(key="f_tag").set_value("vip-customer")
    next(b for b in at.button if b.label == "Apply filters").click().run()
    assert open_buttons(at) == [conversation_id]


def test_an_agent_goes_on_a_break_from_the_sidebar(app_env: Database) -> None:
    at = signed_in("agent", "demo-agent")
    at.toggle[0].set_value(False).run()
    assert not at.exception, at.exception
    with app_env.transaction() as session:
        agent = session.scalars(select(Agent).where(Agent.username == "agent")).one()
        assert agent.available is False
    assert at.toggle[0].value is False


def test_an_admin_adds_a_mailbox_and_sees_it_listed_masked(app_env: Database) -> None:
    at = _settings_page()
    at.text_input(key="mb_username").input("relay@eu.example")
    at.text_input(key="mb_password").input("app-password-123")
    next(t for t in at.text_input if t.label == "IMAP server").input("imap.eu.example")
    next(b for b in at.button if b.label == "Create" and "mailbox_add" in str(b.form_id)).click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["Mailbox added; the worker syncs it on its next pass."]
    with app_env.transaction() as session:
        mailbox = session.scalars(select(Mailbox).where(Mailbox.username == "relay@eu.example")).one()
        assert (mailbox.imap_host, mailbox.imap_port, mailbox.folder) == ("imap.eu.example", 993, "INBOX")
        assert "app-password-123" not in mailbox.password_encrypted
    shown = at.dataframe[-2].value.to_string() if len(at.dataframe) > 1 else ""
    assert "relay@eu.example@imap.eu.example" in shown and "app-password-123" not in shown

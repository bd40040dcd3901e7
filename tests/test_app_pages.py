"""The Streamlit pages, driven offline by AppTest against a demo database (fake NLP backend).

The demo is set up once per run and copied for every test, so each test starts from the same data.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from engine.compliance.rules import RULES
from engine.db import Database
from engine.db.models import (
    Conversation,
    ConversationStatus,
    Draft,
    DraftStatus,
    Message,
    OutboxItem,
    OutboxState,
    Store,
)
from engine.mail import MailKind
from engine.settings import Settings
from engine.taxonomy import INTENTS
from engine.ui import i18n
from engine.workflow.calendar import WEEKDAY_NAMES
from engine.workflow.permissions import Role

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "streamlit_app.py")
TIMEOUT = 60


def signed_in(username: str, password: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    return at


def open_buttons(at: AppTest) -> list[int]:
    return [int(b.key.removeprefix("open_")) for b in at.button if b.key and b.key.startswith("open_")]


def open_conversation(at: AppTest, conversation_id: int) -> AppTest:
    at.button(key=f"open_{conversation_id}").click().run()
    assert not at.exception, at.exception
    return at


def reply_area(at: AppTest) -> Any:
    return next(x for x in at.text_area if x.key and x.key.startswith("reply_"))


def send_button(at: AppTest) -> Any:
    return at.button(key="send")


# --- login -------------------------------------------------------------------------------------------------


def test_login_shows_the_queue(app_env: Database) -> None:
    at = signed_in("agent", "demo-agent")
    assert [t.value for t in at.title] == ["Review queue"]
    counts = {m.label: int(m.value) for m in at.metric}
    assert counts["Open"] == len(open_buttons(at)) > 0  # the agent's store has fewer than a page of them


def test_wrong_password_shows_the_error_and_stays_on_login(app_env: Database) -> None:
    at = signed_in("agent", "not-the-password")
    assert any("Wrong username or password" in e.value for e in at.error)
    assert [t.value for t in at.title] == ["Sign in to ReplyDesk"]
    assert "agent_id" not in at.session_state


def test_chinese_agent_gets_the_chinese_interface(app_env: Database) -> None:
    at = signed_in("agent.zh", "demo-agent")
    assert [t.value for t in at.title] == ["审核队列"]
    assert any(b.label == "打开" for b in at.button)


# --- queue -------------------------------------------------------------------------------------------------


def test_queue_is_in_amazon_deadline_order(app_env: Database) -> None:
    at = signed_in("admin", "demo-admin")
    shown = open_buttons(at)
    with app_env.transaction() as session:
        rows = session.execute(
            select(Conversation.id, Conversation.amazon_deadline).where(
                Conversation.status.in_((ConversationStatus.OPEN, ConversationStatus.HOLD))
            )
        ).all()
    deadlines = {cid: deadline for cid, deadline in rows}
    assert len(shown) == min(25, len(rows)) and len(shown) > 5
    in_order = [d for d in (deadlines[cid] for cid in shown) if d is not None]
    assert in_order == sorted(in_order)
    # Overdue conversations come first and are shown in red.
    assert any(m.value.startswith(":red[**overdue by") for m in at.markdown)


def test_agent_sees_only_permitted_stores(app_env: Database) -> None:
    agent = signed_in("agent", "demo-agent")  # assigned to Demo Europe only
    with app_env.transaction() as session:
        store_of = dict(session.execute(select(Conversation.id, Store.name).join(Store)).all())
    assert {store_of[cid] for cid in open_buttons(agent)} == {"Demo Europe"}
    lead = signed_in("lead", "demo-lead")  # assigned to every store
    assert len({store_of[cid] for cid in open_buttons(lead)}) > 1


# --- conversation ------------------------------------------------------------------------------------------


def _compliant_draft(db: Database, store: str = "Demo Europe") -> tuple[int, int]:
    with db.transaction() as session:
        conversation_id, draft_id = session.execute(
            select(Conversation.id, Draft.id)
            .join(Draft, Draft.conversation_id == Conversation.id)
            .join(Store, Store.id == Conversation.store_id)
            .where(
                Store.name == store,
                Draft.status == DraftStatus.PENDING,
                Draft.allowed.is_(True),
                Draft.action == "reply",
            )
            .order_by(Conversation.amazon_deadline)
            .limit(1)
        ).one()
    return conversation_id, draft_id


def test_approving_a_compliant_draft_creates_an_outbox_item(app_env: Database) -> None:
    conversation_id, draft_id = _compliant_draft(app_env)
    at = open_conversation(signed_in("agent", "demo-agent"), conversation_id)
    button = send_button(at)
    assert button.label == "Approve & send" and not button.disabled
    button.click().run()
    assert not at.exception, at.exception
    assert any("queued for sending" in s.value for s in at.success)
    with app_env.transaction() as session:
        item = session.scalar(select(OutboxItem).where(OutboxItem.draft_id == draft_id))
        draft = session.get_one(Draft, draft_id)
        assert item is not None and item.state == OutboxState.APPROVED
        assert item.body == draft.text.strip()
        assert draft.status == DraftStatus.APPROVED


def test_an_edit_with_an_email_address_is_blocked_with_the_rule_shown(app_env: Database) -> None:
    conversation_id, draft_id = _compliant_draft(app_env)
    at = open_conversation(signed_in("agent", "demo-agent"), conversation_id)
    area = reply_area(at)
    area.input(area.value + "\nWrite to me at buyer.help@example.com instead.").run()
    assert not at.exception, at.exception
    assert send_button(at).disabled
    errors = [e.value for e in at.error]
    assert any("Email address" in e and "(email)" in e for e in errors)
    assert any(":red-background[buyer\\.help\\@example\\.com]" in m.value for m in at.markdown)
    with app_env.transaction() as session:
        assert session.scalar(select(OutboxItem).where(OutboxItem.draft_id == draft_id)) is None


def test_edited_reply_is_sent_as_edited(app_env: Database) -> None:
    conversation_id, draft_id = _compliant_draft(app_env)
    at = open_conversation(signed_in("agent", "demo-agent"), conversation_id)
    reply_area(at).input("Vielen Dank für Ihre Nachricht. Ihr Paket ist unterwegs.").run()
    button = send_button(at)
    assert button.label == "Send edited reply" and not button.disabled
    button.click().run()
    with app_env.transaction() as session:
        item = session.scalar(select(OutboxItem).where(OutboxItem.draft_id == draft_id))
        assert item is not None and item.body == "Vielen Dank für Ihre Nachricht. Ihr Paket ist unterwegs."
        assert session.get_one(Draft, draft_id).status == DraftStatus.EDITED


def test_buyer_script_tag_is_shown_as_text(app_env: Database) -> None:
    conversation_id, _ = _compliant_draft(app_env)
    hostile = "<script>alert('x')</script> **bold** [link](https://evil.example)"
    with app_env.transaction() as session:
        message = session.scalars(
            select(Message).where(
                Message.conversation_id == conversation_id, Message.kind == MailKind.BUYER_MESSAGE.value
            )
        ).first()
        assert message is not None
        message.body = hostile
    at = open_conversation(signed_in("agent", "demo-agent"), conversation_id)
    assert hostile in [t.value for t in at.text]
    for element in at.markdown:
        assert "<script>" not in element.value
        assert not element.proto.allow_html  # nothing on the page is rendered as HTML


def test_reject_needs_a_reason_and_records_it(app_env: Database) -> None:
    conversation_id, draft_id = _compliant_draft(app_env)
    at = open_conversation(signed_in("agent", "demo-agent"), conversation_id)
    at.text_input(key="reject_reason").input("Wrong product")
    next(b for b in at.button if b.label == "Reject draft").click().run()
    assert not at.exception, at.exception
    with app_env.transaction() as session:
        draft = session.get_one(Draft, draft_id)
        assert (draft.status, draft.reject_reason) == (DraftStatus.REJECTED, "Wrong product")


# --- lead and admin pages ----------------------------------------------------------------------------------

LEAD_PAGES = ["knowledge.py", "templates.py", "intents.py", "statistics.py", "routing.py", "eval_runs.py", "health.py"]


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("page", [*LEAD_PAGES, "settings.py"])
def test_admin_pages_render(app_env: Database, page: str, language: str) -> None:
    at = signed_in("admin", "demo-admin")
    at.session_state["ui_language"] = language
    at.switch_page(f"app_pages/{page}").run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    if page == "health.py":  # the demo's old mails are overdue: the page must say so
        assert any("past Amazon" in e or "超过亚马逊时限" in e for e in errors)
    else:
        assert errors == []
    expected = {
        "knowledge.py": "knowledge.title",
        "templates.py": "templates.title",
        "intents.py": "intents.title",
        "statistics.py": "stats.title",
        "routing.py": "routing.title",
        "eval_runs.py": "evals.title",
        "health.py": "health.title",
        "settings.py": "settings.title",
    }[page]
    assert at.title[0].value == i18n.t(expected, language)


def test_agents_do_not_get_lead_pages(app_env: Database) -> None:
    at = signed_in("agent", "demo-agent")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/statistics.py")


# --- translations ------------------------------------------------------------------------------------------


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_string_exists_in_both_languages_with_the_same_fields() -> None:
    for key in i18n.all_keys():
        english, chinese = i18n.raw(key)
        assert _fields(english) == _fields(chinese), key
        assert (english == "") == (chinese == ""), key


def test_no_key_is_in_both_string_tables() -> None:
    from engine.ui.strings_team import TEAM_STRINGS
    from engine.ui.strings_work import WORK_STRINGS

    assert sorted(set(WORK_STRINGS) & set(TEAM_STRINGS)) == []
    assert len(i18n.all_keys()) == len(WORK_STRINGS) + len(TEAM_STRINGS)


def test_every_key_the_pages_use_exists() -> None:
    sources = [REPO_ROOT / "streamlit_app.py", *sorted((REPO_ROOT / "app_pages").glob("*.py"))]
    literal = re.compile(
        r"""["']((?:nav|sidebar|login|queue|conversation|knowledge|templates|intents|stats|health|"""
        r"""settings|routing|weekday|common|error)\.[a-z_.]+[a-z])["']"""
    )
    used = {m.group(1) for path in sources for m in literal.finditer(path.read_text(encoding="utf-8"))}
    assert len(used) > 150
    assert sorted(k for k in used if not i18n.has(k)) == []
    dynamic = [
        *(f"intent.{i}" for i in INTENTS),
        *(f"status.{s}" for s in ConversationStatus),
        *(f"draft.{s}" for s in DraftStatus),
        *(f"outbox.{s}" for s in OutboxState),
        *(f"kind.{k}" for k in MailKind),
        *(f"rule.{r.id}" for r in RULES),
        *(f"role.{r}" for r in Role),
        *(f"weekday.{d}" for d in WEEKDAY_NAMES),
        *(
            f"health.alert.{c}"
            for c in (
                "mailbox_error",
                "sync_stale",
                "outbox_unknown",
                "outbox_failed",
                "outbox_blocked",
                "overdue",
                "unparsed",
            )
        ),
    ]
    assert [k for k in dynamic if not i18n.has(k)] == []


def _german_conversation(db: Database) -> int:
    with db.transaction() as session:
        return session.scalars(
            select(Conversation.id).where(Conversation.language == "de", Conversation.status == ConversationStatus.OPEN)
        ).first() or pytest.fail("the demo has no open German conversation")


def test_translation_needs_an_llm_and_says_how_to_configure_it(app_env: Database) -> None:
    conversation_id = _german_conversation(app_env)
    at = signed_in("agent", "demo-agent")
    open_conversation(at, conversation_id)
    at.toggle(key=next(t.key for t in at.toggle if t.key and t.key.startswith("translate_"))).set_value(True).run()
    assert not at.exception, at.exception
    assert any("OPENAI_API_KEY" in info.value for info in at.info)


def test_an_agent_reads_the_buyer_message_and_the_reply_in_their_own_language(
    app_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.drafting.translate import FakeTranslator
    from engine.ui.container import AppServices

    translator = FakeTranslator()
    original_init = AppServices.__init__

    def with_fake_translator(self: AppServices, settings: Settings) -> None:
        original_init(self, settings)
        self.translator = translator

    monkeypatch.setattr(AppServices, "__init__", with_fake_translator)
    from engine.ui.container import _services

    _services.clear()  # type: ignore[attr-defined]
    conversation_id = _german_conversation(app_env)
    at = signed_in("agent", "demo-agent")  # reads English; the conversation is German
    open_conversation(at, conversation_id)
    at.toggle(key=next(t.key for t in at.toggle if t.key and t.key.startswith("translate_"))).set_value(True).run()
    at.toggle(key=f"back_translate_{conversation_id}").set_value(True).run()
    assert not at.exception, at.exception
    translated = [t.value for t in at.text if t.value.startswith("[en] ")]
    assert len(translated) >= 2  # the buyer's message and the back-translated reply
    assert {(source, target) for _, source, target in translator.calls} == {("de", "en")}
    assert reply_area(at).value and not reply_area(at).value.startswith("[en]")  # the reply stays German
    _services.clear()  # type: ignore[attr-defined]

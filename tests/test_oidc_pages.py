"""The login page with single sign-on, driven by AppTest: `FakeSingleSignOn` stands in for Streamlit's
st.login/st.user/st.logout (the real round trip is in test_oidc_browser.py); the real one is used where only
the `[auth]` secrets matter."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from engine.db import Database
from engine.db.models import AuditEvent, Store
from engine.services.agents import NewPassword, create_agent
from engine.ui import auth, i18n
from engine.ui.auth import FakeSingleSignOn, Provider
from engine.ui.format import escape_markdown
from engine.workflow.permissions import Role
from tests import test_app_pages

APP, TIMEOUT = test_app_pages.APP, test_app_pages.TIMEOUT

CORP = Provider("corp", "Corp SSO")
MAPPED_EMAIL = "Mia.Chen@example.com"
IDENTITY = {"iss": "https://sso.corp.example", "sub": "corp-user-1"}
AUTH_SECRETS = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-long-random-cookie-secret",
    "google": {"client_id": "id", "client_secret": "s", "server_metadata_url": "https://accounts.example.com/.wk"},
    "corp": {
        "client_id": "id",
        "client_secret": "s",
        "server_metadata_url": "https://sso.corp.example/.wk",
        "label": "Corp SSO",
    },
}


@pytest.fixture
def mapped_agent(app_env: Database) -> int:
    """A lead on Demo Europe whose username is their email address."""
    with app_env.transaction() as session:
        store = session.scalars(select(Store).where(Store.name == "Demo Europe")).one()
        agent = create_agent(
            session,
            MAPPED_EMAIL,
            password=NewPassword.of("not-used-with-sso"),
            role=Role.LEAD,
            display_name="Mia Chen",
            stores=[store],
        )
        return agent.id


def use_fake(monkeypatch: pytest.MonkeyPatch, claims: dict[str, Any] | None = None) -> FakeSingleSignOn:
    fake = FakeSingleSignOn([CORP], claims_on_login=claims)
    monkeypatch.setattr(auth, "single_sign_on", lambda: fake)
    return fake


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def button_labels(at: AppTest) -> list[str]:
    """The plain buttons (AppTest lists a form's submit button among them too)."""
    submit = {b.label for b in at.form_submit_button}
    return [b.label for b in at.button if b.label not in submit]


def sso_events(db: Database) -> list[tuple[str, dict[str, Any]]]:
    with db.transaction() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("agent.login%")).order_by(AuditEvent.id)
        ).all()
        return [(e.action, dict(e.after or {})) for e in events]


def test_without_auth_config_the_page_offers_local_sign_in_only(app_env: Database) -> None:
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert not [label for label in button_labels(at) if label.startswith("Sign in with")]
    assert at.text_input(key="login_username") is not None
    assert not at.error


def test_configured_providers_are_offered_beside_the_password_form(app_env: Database) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["auth"] = AUTH_SECRETS  # read by the real StreamlitSingleSignOn
    run(at)
    assert button_labels(at) == ["Sign in with Google", "Sign in with Corp SSO"]
    assert at.text_input(key="login_username") is not None
    assert "Or with a ReplyDesk username and password:" in [c.value for c in at.caption]


def test_an_incomplete_auth_section_is_explained_and_passwords_still_work(app_env: Database) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["auth"] = {k: v for k, v in AUTH_SECRETS.items() if k != "cookie_secret"}
    run(at)
    # Escaped: a configuration message is shown as written, never as markup.
    assert [e.value for e in at.error] == [
        "Single sign-on is not available: "
        + escape_markdown(
            "The [auth] section of .streamlit/secrets.toml lacks cookie_secret; add "
            "them (redirect_uri is the app's address plus /oauth2callback) or remove [auth] to sign in with local "
            "accounts only."
        )
    ]
    at.text_input(key="login_username").input("agent")
    at.text_input(key="login_password").input("demo-agent")
    at.form_submit_button[0].click()
    assert [t.value for t in run(at).title] == ["Review queue"]


def test_sign_in_with_a_provider_lands_in_the_queue_as_the_mapped_agent(
    app_env: Database, mapped_agent: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = use_fake(monkeypatch, {**IDENTITY, "email": "mia.chen@EXAMPLE.com", "email_verified": True, "role": "admin"})
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    at.button(key="sso_corp").click()
    run(at)
    assert fake.calls == ["log_in:corp"]
    run(at)  # the browser is back from the provider
    assert [t.value for t in at.title] == ["Review queue"]
    assert at.session_state["agent_id"] == mapped_agent
    assert "Signed in as Mia Chen (team lead)" in [c.value for c in at.sidebar.caption]  # the row's role
    assert sso_events(app_env) == [
        ("agent.login", {"method": "oidc", "provider": "corp", "email": "mia.chen@EXAMPLE.com"})
    ]


def test_an_unknown_identity_is_told_to_ask_an_admin_once_and_can_sign_out(
    app_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = use_fake(monkeypatch, {**IDENTITY, "email": "stranger@example.com", "email_verified": True})
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    at.button(key="sso_corp").click()
    run(run(at))
    message = (
        "You are signed in as stranger\\@example\\.com, but ReplyDesk has no account for you. "
        "Ask an admin to create an account named stranger\\@example\\.com."
    )  # the address escaped: it comes from the identity provider
    assert [e.value for e in at.error] == [message]
    assert "agent_id" not in at.session_state
    assert [t.value for t in at.title] == ["Sign in to ReplyDesk"]
    run(at)  # reruns show the refusal again without auditing it again
    assert [e.value for e in at.error] == [message]
    assert [(action, after["reason"]) for action, after in sso_events(app_env)] == [
        ("agent.login_refused", "unknown_account")
    ]
    at.button(key="sso_sign_out").click()
    run(run(at))  # the real logout redirect reloads the app; the second run stands for that reload
    assert fake.calls == ["log_in:corp", "log_out"]
    assert not at.error and "Sign in with Corp SSO" in button_labels(at)


def test_an_unverified_email_is_refused_in_chinese_too(
    app_env: Database, mapped_agent: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fake(monkeypatch, {**IDENTITY, "email": MAPPED_EMAIL, "email_verified": False})
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["ui_language"] = "zh"
    run(at)
    at.button(key="sso_corp").click()
    run(run(at))
    assert [e.value for e in at.error] == [
        f"身份提供方尚未验证 {escape_markdown(MAPPED_EMAIL)}。请先在那里验证该地址，然后重新登录。"
    ]
    assert "agent_id" not in at.session_state


def test_signing_out_also_ends_the_single_sign_on_session(
    app_env: Database, mapped_agent: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = use_fake(monkeypatch, {**IDENTITY, "email": MAPPED_EMAIL, "email_verified": True})
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    at.button(key="sso_corp").click()
    run(run(at))
    assert at.session_state["agent_id"] == mapped_agent
    next(b for b in at.sidebar.button if b.label == "Sign out").click()
    run(at)
    assert fake.calls == ["log_in:corp", "log_out"]
    run(at)  # without st.logout the provider's identity would sign the browser straight back in
    assert [t.value for t in at.title] == ["Sign in to ReplyDesk"]
    assert "agent_id" not in at.session_state


def test_signing_out_of_a_password_session_leaves_single_sign_on_alone(
    app_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = use_fake(monkeypatch)
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    at.text_input(key="login_username").input("agent")
    at.text_input(key="login_password").input("demo-agent")
    at.form_submit_button[0].click()
    run(at)
    next(b for b in at.sidebar.button if b.label == "Sign out").click()
    run(at)
    assert fake.calls == []
    assert [t.value for t in at.title] == ["Sign in to ReplyDesk"]


def test_sso_only_hides_the_password_form(app_env: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLYDESK_LOCAL_LOGIN", "false")
    use_fake(monkeypatch)
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert button_labels(at) == ["Sign in with Corp SSO"]
    assert not at.text_input and not at.form_submit_button and not at.error


def test_sso_only_without_a_provider_says_how_to_fix_it(app_env: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLYDESK_LOCAL_LOGIN", "false")
    monkeypatch.setattr(auth, "single_sign_on", lambda: FakeSingleSignOn([]))
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert [e.value for e in at.error] == [i18n.t("login.sso_only_unconfigured")]
    assert "REPLYDESK_LOCAL_LOGIN=false" in at.error[0].value
    assert not at.text_input and not at.button


def test_every_refusal_has_a_sentence_in_both_languages() -> None:
    codes = ("no_email", "email_unverified", "unknown_account", "inactive_account", "ambiguous_account")
    assert [c for c in codes if not i18n.has(f"login.sso_refused.{c}")] == []

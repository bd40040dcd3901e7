"""Single sign-on end to end: the app under `streamlit run` with an `[auth]` secrets file pointing at a loopback
OIDC provider (tests/oidc_provider.py), Chromium driven by Playwright, nothing off this machine.

Streamlit's real st.login does the work: authorize redirect with state, nonce and PKCE, the code exchanged
for an RS256 id_token checked against the provider's JWKS, the identity cookie; ReplyDesk maps the email to
an agent. A known email lands in the queue and signs out for good; an unknown one is told to ask an admin.
Screenshots go to `tests/artifacts/oidc-*.png`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.db import Database
from engine.db.models import AuditEvent, Store
from engine.services.agents import NewPassword, create_agent
from engine.settings import Settings
from engine.workflow.permissions import Role
from tests import test_browser
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeOidcProvider

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS, CHROMIUM, CHROMIUM_ARGS = test_browser.ARTIFACTS, test_browser.CHROMIUM, test_browser.CHROMIUM_ARGS
demo = test_browser.demo  # the demo database
app_url = test_browser.app_url  # the app under `streamlit run`, started with the environment of the moment

SSO_BUTTON = "Sign in with Loopback SSO"
KNOWN_EMAIL = "Sam.Sso@example.com"
WAIT = 60_000  # ms; generous, a busy machine renders slowly, and an expectation that holds returns at once


@pytest.fixture
def oidc_provider() -> Iterator[FakeOidcProvider]:
    provider = FakeOidcProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(autouse=True)
def auth_secrets(oidc_provider: FakeOidcProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The `[auth]` configuration, handed to `streamlit run` as `--secrets.files` through its environment
    variable (autouse, so it is set before `app_url` starts the app). `{port}` is Streamlit's placeholder for
    the port the app listens on."""
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "loopback-cookie-secret-long-enough"\n'
        "\n"
        "[auth.loopback]\n"
        'label = "Loopback SSO"\n'
        f'client_id = "{CLIENT_ID}"\n'
        f'client_secret = "{CLIENT_SECRET}"\n'
        f'server_metadata_url = "{oidc_provider.metadata_url}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("STREAMLIT_SECRETS_FILES", str(secrets))
    return secrets


def test_single_sign_on_maps_the_email_to_an_agent_and_refuses_strangers(
    demo: tuple[Settings, Database], oidc_provider: FakeOidcProvider, app_url: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    _, db = demo
    with db.transaction() as session:
        store = session.scalars(select(Store).where(Store.name == "Demo Europe")).one()
        agent = create_agent(
            session,
            KNOWN_EMAIL,
            password=NewPassword.of("unused-with-sso"),
            role=Role.AGENT,
            display_name="Sam Sso",
            stores=[store],
        )
        agent_id = agent.id
    oidc_provider.redirect_uri = f"{app_url}/oauth2callback"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

        # A known, verified email: the provider's round trip, then the queue as that agent.
        oidc_provider.user = {"sub": "sam-1", "email": "sam.sso@EXAMPLE.com", "email_verified": True, "name": "Sam"}
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(WAIT)
        page.goto(app_url)
        expect(page.locator(".st-key-login_username input")).to_be_visible(timeout=WAIT)  # passwords work beside it
        page.get_by_role("button", name=SSO_BUTTON, exact=True).click()
        expect(page.get_by_role("heading", name="Review queue")).to_be_visible(timeout=WAIT)
        expect(page.get_by_text("Signed in as Sam Sso (agent)")).to_be_visible(timeout=WAIT)
        expect(page.get_by_test_id("stMetric").first).to_be_visible(timeout=WAIT)
        assert any(c["name"] == "_streamlit_user" for c in context.cookies())
        page.wait_for_timeout(1000)  # let the queue fragment finish painting
        page.screenshot(path=str(ARTIFACTS / "oidc-queue.png"), full_page=True)

        # Signing out ends the identity too: the next page load is not signed straight back in.
        page.get_by_role("button", name="Sign out", exact=True).click()
        expect(page.get_by_role("button", name=SSO_BUTTON, exact=True)).to_be_visible(timeout=WAIT)
        expect(page.get_by_role("heading", name="Sign in to ReplyDesk")).to_be_visible(timeout=WAIT)
        page.wait_for_load_state("load")  # the logout redirect has come back to the app
        page.reload()
        expect(page.get_by_role("button", name=SSO_BUTTON, exact=True)).to_be_visible(timeout=WAIT)
        expect(page.get_by_role("heading", name="Review queue")).to_have_count(0)
        assert not [c["name"] for c in context.cookies() if c["name"].startswith("_streamlit_user")]
        context.close()

        # An email no agent is named after: verified by the provider, refused by ReplyDesk.
        oidc_provider.user = {"sub": "stranger-2", "email": "nobody@example.com", "email_verified": True}
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(WAIT)
        page.goto(app_url)
        page.get_by_role("button", name=SSO_BUTTON, exact=True).click()
        refusal = page.get_by_text("Ask an admin to create an account named nobody@example.com.")
        expect(refusal).to_be_visible(timeout=WAIT)
        expect(page.get_by_role("heading", name="Sign in to ReplyDesk")).to_be_visible(timeout=WAIT)
        expect(page.get_by_role("button", name="Sign out of single sign-on")).to_be_visible(timeout=WAIT)
        page.screenshot(path=str(ARTIFACTS / "oidc-refused.png"), full_page=True)
        context.close()
        browser.close()

    # Both sign-ins went through the provider's code exchange, with a nonce Streamlit checked.
    assert [claims["email"] for claims in oidc_provider.issued] == ["sam.sso@EXAMPLE.com", "nobody@example.com"]
    assert all(claims.get("nonce") for claims in oidc_provider.issued)
    assert oidc_provider.log.count("POST /token") == 2
    with db.transaction() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("agent.login%")).order_by(AuditEvent.id)
        ).all()
        assert [(e.action, e.actor_id, (e.after or {}).get("email")) for e in events] == [
            ("agent.login", agent_id, "sam.sso@EXAMPLE.com"),
            ("agent.login_refused", None, "nobody@example.com"),
        ]

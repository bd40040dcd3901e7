"""Single sign-on: mapping a verified OIDC identity to an agent (both databases), the `[auth]` secrets reader
and the setting that turns password sign-in off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Agent, AuditEvent
from engine.errors import ConfigError
from engine.services.accounts import IdentityRefused, SignedIn, log_in_with_identity
from engine.services.agents import NewPassword, create_agent
from engine.services.stores import ensure_store
from engine.settings import Settings
from engine.ui.auth import DEFAULT_PROVIDER, Provider, providers_from_secrets
from engine.workflow.permissions import Role

PASSWORD = "long-enough-password"


def _login_events(session: Session, email: str) -> list[AuditEvent]:
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action.in_(("agent.login", "agent.login_refused"))).order_by(AuditEvent.id)
    ).all()
    return [e for e in events if (e.after or {}).get("email") == email]


@pytest.fixture
def team(session: Session) -> dict[str, Agent]:
    store = ensure_store(session, "OIDC Test Store", region="eu", marketplaces=["DE"], sender_address=None)
    agents = {
        "lead": create_agent(
            session,
            "Ann.Lee@Example.com",
            password=NewPassword.of(PASSWORD),
            role=Role.LEAD,
            display_name="Ann Lee",
            stores=[store],
        ),
        "gone": create_agent(session, "old@example.com", password=NewPassword.of(PASSWORD)),
        "dup1": create_agent(session, "Dup@example.com", password=NewPassword.of(PASSWORD)),
        "dup2": create_agent(session, "dup@example.com", password=NewPassword.of(PASSWORD)),
        "local": create_agent(session, "agent-oidc", password=NewPassword.of(PASSWORD)),
    }
    agents["gone"].active = False
    session.flush()
    return agents


@pytest.mark.parametrize(
    "claims",
    [
        {"email": "ann.lee@example.com", "email_verified": True},
        {"email": "ANN.LEE@EXAMPLE.COM"},  # no email_verified claim at all: nothing says it is unverified
        {"email": " Ann.Lee@Example.com ", "email_verified": "true"},  # some providers send strings
    ],
)
def test_verified_email_maps_to_the_agent_of_that_name(
    session: Session, team: dict[str, Agent], claims: dict[str, Any]
) -> None:
    outcome = log_in_with_identity(session, claims, provider="google")
    assert isinstance(outcome, SignedIn)
    assert outcome.principal.agent_id == team["lead"].id
    assert outcome.username == "Ann.Lee@Example.com" and outcome.display_name == "Ann Lee"
    [event] = _login_events(session, claims["email"].strip())
    assert event.action == "agent.login" and event.actor_id == team["lead"].id and event.entity_id == team["lead"].id
    assert event.after == {"method": "oidc", "provider": "google", "email": claims["email"].strip()}


def test_role_and_stores_come_from_the_account_never_from_the_token(session: Session, team: dict[str, Agent]) -> None:
    claims = {"email": "ann.lee@example.com", "role": "admin", "roles": ["admin"], "groups": ["ReplyDesk Admins"]}
    outcome = log_in_with_identity(session, claims)
    assert isinstance(outcome, SignedIn)
    assert outcome.principal.role == Role.LEAD
    assert outcome.principal.store_ids == frozenset(s.id for s in team["lead"].stores) != frozenset()


@pytest.mark.parametrize(
    ("claims", "code", "in_message"),
    [
        ({"email": "new.hire@example.com", "email_verified": True}, "unknown_account", "named new.hire@example.com"),
        ({"email": "old@example.com"}, "inactive_account", "reactivate"),
        ({"email": "ann.lee@example.com", "email_verified": False}, "email_unverified", "not verified"),
        ({"email": "ann.lee@example.com", "email_verified": "false"}, "email_unverified", "not verified"),
        ({"email": "dup@example.com"}, "ambiguous_account", "rename"),
        ({"email_verified": True, "sub": "1234"}, "no_email", "email scope"),
        ({"email": "   "}, "no_email", "email scope"),
        ({"email": "agent-oidc"}, "no_email", "email scope"),  # a bare username is not an email address
        ({"email": ["ann.lee@example.com"]}, "no_email", "email scope"),
    ],
)
def test_refusals_say_why_and_are_audited(
    session: Session, team: dict[str, Agent], claims: dict[str, Any], code: str, in_message: str
) -> None:
    outcome = log_in_with_identity(session, claims, provider="okta")
    assert isinstance(outcome, IdentityRefused)
    assert outcome.code == code
    assert in_message in outcome.message
    email = outcome.email
    events = _login_events(session, email)
    assert [(e.action, e.actor_id, (e.after or {}).get("reason")) for e in events] == [
        ("agent.login_refused", None, code)
    ]
    assert (events[0].after or {})["provider"] == "okta"


def test_unknown_identity_is_not_provisioned(session: Session, team: dict[str, Agent]) -> None:
    before = session.scalar(select(Agent.id).order_by(Agent.id.desc()).limit(1))
    log_in_with_identity(session, {"email": "stranger@example.com", "email_verified": True})
    assert session.scalar(select(Agent.id).order_by(Agent.id.desc()).limit(1)) == before
    assert session.scalar(select(Agent).where(Agent.username == "stranger@example.com")) is None


# --- the [auth] section of secrets.toml ----------------------------------------------------------------------

SHARED = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "a-long-random-cookie-secret"}
PROVIDER = {"client_id": "id", "client_secret": "secret", "server_metadata_url": "https://sso.example.com/.well-known"}


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({**SHARED, **PROVIDER}, [Provider(DEFAULT_PROVIDER, "sso.example.com")]),
        ({**SHARED, **PROVIDER, "label": "Company SSO"}, [Provider(DEFAULT_PROVIDER, "Company SSO")]),
        (
            {**SHARED, "google": PROVIDER, "okta": {**PROVIDER, "label": "Okta (staff)"}},
            [Provider("google", "Google"), Provider("okta", "Okta (staff)")],
        ),
    ],
)
def test_providers_are_read_like_st_login_reads_them(auth: dict[str, Any], expected: list[Provider]) -> None:
    assert providers_from_secrets(auth) == expected


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"cookie_secret": "x" * 20, **PROVIDER}, "lacks redirect_uri"),
        ({"redirect_uri": SHARED["redirect_uri"], **PROVIDER}, "lacks cookie_secret"),
        (SHARED, "names no provider"),
        ({**SHARED, "google": {"client_id": "id"}}, "[auth.google] in .streamlit/secrets.toml lacks client_secret"),
        ({**SHARED, "my_idp": PROVIDER}, "'_'"),
    ],
)
def test_incomplete_auth_sections_say_what_to_add(auth: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        providers_from_secrets(auth)
    assert message in str(raised.value)


# --- the setting -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("false", False), ("off", False), ("true", True)])
def test_password_sign_in_is_on_unless_turned_off(tmp_path: Path, value: str | None, expected: bool) -> None:
    env = {} if value is None else {"REPLYDESK_LOCAL_LOGIN": value}
    assert Settings.from_env(env, env_file=tmp_path / "missing.env").local_login is expected


def test_a_misspelt_local_login_setting_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="REPLYDESK_LOCAL_LOGIN must be true or false"):
        Settings.from_env({"REPLYDESK_LOCAL_LOGIN": "sso"}, env_file=tmp_path / "missing.env")

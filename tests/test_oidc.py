"""Single sign-on: mapping a verified OIDC identity to an agent (both databases), the `[auth]` secrets reader
and the setting that turns password sign-in off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Agent, AuditEvent
from engine.errors import ConfigError, InputError, PermissionDenied
from engine.services.accounts import IdentityRefused, SignedIn, log_in_with_identity, signed_in, unbind_identity
from engine.services.agents import NewPassword, create_agent, fold_username, principal_for
from engine.services.stores import ensure_store
from engine.settings import Settings
from engine.ui.auth import DEFAULT_PROVIDER, Provider, providers_from_secrets
from engine.workflow.permissions import Role

PASSWORD = "long-enough-password"


ISSUER = "https://idp.example.com"


def _claims(email: object = "ann.lee@example.com", **more: object) -> dict[str, Any]:
    return {"iss": ISSUER, "sub": "ann-1", "email": email, "email_verified": True, **more}


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
        "local": create_agent(session, "agent-oidc", password=NewPassword.of(PASSWORD)),
        "kelvin": create_agent(session, "kim@example.com", password=NewPassword.of(PASSWORD)),
    }
    # Two names differing in case only, as an older version could create them (it no longer can).
    agents["dup2"] = Agent(username="dup@example.com", username_key="dup@example.com", display_name="dup")
    session.add(agents["dup2"])
    agents["gone"].active = False
    session.flush()
    return agents


@pytest.mark.parametrize(
    "claims",
    [
        _claims("ann.lee@example.com"),
        _claims("ANN.LEE@EXAMPLE.COM"),
        _claims(" Ann.Lee@Example.com ", email_verified="true"),  # some providers send strings
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
    assert (team["lead"].sso_issuer, team["lead"].sso_subject) == (ISSUER, "ann-1")  # bound at first sign-in


def test_role_and_stores_come_from_the_account_never_from_the_token(session: Session, team: dict[str, Agent]) -> None:
    claims = _claims(role="admin", roles=["admin"], groups=["ReplyDesk Admins"])
    outcome = log_in_with_identity(session, claims)
    assert isinstance(outcome, SignedIn)
    assert outcome.principal.role == Role.LEAD
    assert outcome.principal.store_ids == frozenset(s.id for s in team["lead"].stores) != frozenset()


@pytest.mark.parametrize(
    ("claims", "code", "in_message"),
    [
        (_claims("new.hire@example.com"), "unknown_account", "named new.hire@example.com"),
        (_claims("old@example.com"), "inactive_account", "reactivate"),
        # Entra and others send no email_verified by default: an unverified address must not get in.
        ({"iss": ISSUER, "sub": "x", "email": "ann.lee@example.com"}, "email_unverified", "not verified"),
        (_claims(email_verified=False), "email_unverified", "not verified"),
        (_claims(email_verified="false"), "email_unverified", "not verified"),
        (_claims(email_verified=1), "email_unverified", "not verified"),
        (_claims("dup@example.com"), "ambiguous_account", "rename"),
        ({"email_verified": True, "sub": "1234"}, "no_email", "email scope"),
        (_claims("   "), "no_email", "email scope"),
        (_claims("agent-oidc"), "no_email", "email scope"),  # a bare username is not an email address
        (_claims(["ann.lee@example.com"]), "no_email", "email scope"),
        ({"email": "ann.lee@example.com", "email_verified": True}, "no_subject", "issuer or subject"),
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
    assert team["lead"].sso_subject is None  # a refusal binds nothing


def test_after_binding_only_the_same_issuer_and_subject_get_in(session: Session, team: dict[str, Agent]) -> None:
    assert isinstance(log_in_with_identity(session, _claims(), provider="google"), SignedIn)
    # A second provider (or another tenant) carrying the same verified e-mail: the nOAuth pattern.
    other_provider = _claims(iss="https://login.other-idp.example/tenant", sub="ann-1")
    other_subject = _claims(sub="someone-else")
    for claims in (other_provider, other_subject):
        outcome = log_in_with_identity(session, claims, provider="entra")
        assert isinstance(outcome, IdentityRefused) and outcome.code == "identity_mismatch"
        assert "unbind" in outcome.message
    assert isinstance(log_in_with_identity(session, _claims(), provider="google"), SignedIn)


def test_an_admin_unbinds_and_the_account_is_signed_out_everywhere(session: Session, team: dict[str, Agent]) -> None:
    admin = create_agent(session, "root-oidc", password=NewPassword.of(PASSWORD), role=Role.ADMIN)
    first = log_in_with_identity(session, _claims())
    assert isinstance(first, SignedIn)
    with pytest.raises(PermissionDenied):
        unbind_identity(session, first.principal, team["lead"].id)  # a lead may not
    unbind_identity(session, principal_for(admin), team["lead"].id)
    assert signed_in(session, team["lead"].id, first.session_generation) is None
    moved = log_in_with_identity(session, _claims(iss="https://new-idp.example", sub="ann-9"))
    assert isinstance(moved, SignedIn)
    assert (team["lead"].sso_issuer, team["lead"].sso_subject) == ("https://new-idp.example", "ann-9")
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.entity_id == team["lead"].id)).all()
    assert "agent.sso_unbound" in actions and actions.count("agent.sso_bound") == 2


def test_the_kelvin_sign_folds_like_the_letter_k(session: Session, team: dict[str, Agent]) -> None:
    kelvin = "\u212aim@example.com"  # KELVIN SIGN, which Python casefold and SQL lower() treat differently
    assert fold_username(kelvin) == fold_username("KIM@example.com") == "kim@example.com"
    outcome = log_in_with_identity(session, _claims(kelvin, sub="kim-1"))
    assert isinstance(outcome, SignedIn) and outcome.principal.agent_id == team["kelvin"].id
    with pytest.raises(InputError, match="exists already"):
        create_agent(session, "\u212aIM@EXAMPLE.COM", password=NewPassword.none())
    assert team["kelvin"].username_key == "kim@example.com"


def test_unknown_identity_is_not_provisioned(session: Session, team: dict[str, Agent]) -> None:
    before = session.scalar(select(Agent.id).order_by(Agent.id.desc()).limit(1))
    log_in_with_identity(session, _claims("stranger@example.com"))
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

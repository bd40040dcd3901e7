"""Sign in with a local account, or with single sign-on (OIDC) when `[auth]` is configured in secrets.toml."""

from __future__ import annotations

import streamlit as st

from engine.errors import ConfigError, PermissionDenied
from engine.services.accounts import IdentityRefused, SignedIn, log_in, log_in_with_identity
from engine.services.sign_in import SignInLimits, SignInLocked, SignInThrottled
from engine.ui import auth, state
from engine.ui.container import app_services
from engine.ui.format import escape_markdown

tr = state.tr
app = app_services()
sso = auth.single_sign_on()

st.title(tr("login.title"))
st.caption(tr("login.intro"))
state.show_flash()

try:
    providers = sso.providers()
except ConfigError as exc:
    providers = []
    st.error(tr("login.sso_misconfigured", message=escape_markdown(str(exc))))

identity = sso.identity() if providers else None
if identity is not None:
    # Decided once per browser session: a refusal is audited, and reruns should not repeat it.
    if state.SSO_REFUSAL not in st.session_state:
        claims, provider_name = identity.claims, identity.provider
        outcome = app.run(lambda session: log_in_with_identity(session, claims, provider=provider_name))
        if isinstance(outcome, SignedIn):
            state.sign_in(outcome.principal.agent_id, outcome.ui_language, outcome.session_generation)
            st.rerun()
        st.session_state[state.SSO_REFUSAL] = outcome
    refusal = st.session_state[state.SSO_REFUSAL]
    if isinstance(refusal, IdentityRefused):
        st.error(tr(f"login.sso_refused.{refusal.code}", email=escape_markdown(refusal.email)))
    if st.button(tr("login.sso_sign_out"), key="sso_sign_out", icon=":material/logout:"):
        if state.sign_out():
            st.stop()  # the logout redirect reloads the app
        st.rerun()
else:
    for provider in providers:
        if st.button(tr("login.sso_with", provider=provider.label), key=f"sso_{provider.name}", icon=":material/key:"):
            sso.log_in(provider.name)
            st.stop()  # the browser is on its way to the provider

if not app.settings.local_login:
    if not providers:
        st.error(tr("login.sso_only_unconfigured"))
    st.stop()

if providers:
    st.caption(tr("login.sso_local_caption"))
with st.form("login"):
    username = st.text_input(tr("login.username"), key="login_username")
    password = st.text_input(tr("login.password"), type="password", key="login_password")
    submitted = st.form_submit_button(tr("login.submit"), type="primary")

if submitted:
    address = st.context.ip_address
    client = address if isinstance(address, str) else ""
    try:
        user = log_in(app.db, username, password, client=client, limits=SignInLimits.of(app.settings))
    except SignInLocked:
        st.error(tr("login.locked"))
    except SignInThrottled as exc:
        st.error(tr("login.throttled", seconds=exc.wait_seconds))
    except PermissionDenied:
        st.error(tr("login.failed"))
    else:
        state.sign_in(user.principal.agent_id, user.ui_language, user.session_generation)
        st.rerun()

"""Sign in with a local account."""

from __future__ import annotations

import streamlit as st

from engine.errors import PermissionDenied
from engine.services.accounts import log_in
from engine.ui import state
from engine.ui.container import app_services

tr = state.tr
app = app_services()

st.title(tr("login.title"))
st.caption(tr("login.intro"))
with st.form("login"):
    username = st.text_input(tr("login.username"), key="login_username")
    password = st.text_input(tr("login.password"), type="password", key="login_password")
    submitted = st.form_submit_button(tr("login.submit"), type="primary")

if submitted:
    try:
        user = app.run(lambda session: log_in(session, username, password))
    except PermissionDenied:
        st.error(tr("login.failed"))
    else:
        state.sign_in(user.principal.agent_id, user.ui_language)
        st.rerun()

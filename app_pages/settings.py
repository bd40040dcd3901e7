"""Settings (admins): stores and agents — list and create."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.services import accounts
from engine.taxonomy import LANGUAGES, MARKETPLACES
from engine.ui import state
from engine.ui.container import app_services
from engine.ui.i18n import UI_LANGUAGE_NAMES
from engine.workflow.permissions import Role

tr = state.tr
app = app_services()
user = state.require_user(app)
principal = user.principal

st.title(tr("settings.title"))
state.show_flash()

stores = app.run(lambda s: accounts.visible_stores(s, principal))
store_names = {s.id: s.name for s in stores}
tab_stores, tab_agents = st.tabs([tr("settings.stores"), tr("settings.agents")])

with tab_stores:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    tr("queue.col.store"): s.name,
                    tr("settings.region"): s.region,
                    tr("queue.marketplace"): ", ".join(s.marketplaces),
                    tr("settings.sender"): s.sender_address or "—",
                    tr("health.mailboxes"): s.mailboxes,
                }
                for s in stores
            ]
        ),
        hide_index=True,
        use_container_width=True,
    )
    with st.form("store_add", clear_on_submit=True):
        st.markdown(f"#### {tr('settings.add_store')}")
        name = st.text_input(tr("settings.store_name"))
        region = st.selectbox(tr("settings.region"), ["eu", "na", "fe"])
        markets = st.multiselect(tr("queue.marketplace"), list(MARKETPLACES))
        sender = st.text_input(tr("settings.sender"))
        if st.form_submit_button(tr("settings.create")) and state.attempt(
            app,
            lambda s: accounts.add_store(
                s, principal, name, region=region, marketplaces=markets, sender_address=sender or None
            ),
        ):
            state.flash("success", tr("settings.store_created"))
            st.rerun()

with tab_agents:
    agents = app.run(lambda s: accounts.list_agents(s, principal))
    st.dataframe(
        pd.DataFrame(
            [
                {
                    tr("settings.username"): a.username,
                    tr("settings.display_name"): a.display_name,
                    tr("settings.role"): tr(f"role.{a.role}"),
                    tr("settings.stores"): ", ".join(a.stores),
                    tr("settings.languages"): ", ".join(a.languages),
                    tr("settings.active"): a.active,
                }
                for a in agents
            ]
        ),
        hide_index=True,
        use_container_width=True,
    )
    with st.form("agent_add", clear_on_submit=True):
        st.markdown(f"#### {tr('settings.add_agent')}")
        cols = st.columns(2)
        username = cols[0].text_input(tr("settings.username"))
        display_name = cols[1].text_input(tr("settings.display_name"))
        password = cols[0].text_input(tr("login.password"), type="password")
        role = cols[1].selectbox(tr("settings.role"), list(Role), format_func=lambda r: tr(f"role.{r}"))
        assigned = st.multiselect(tr("settings.stores"), list(store_names), format_func=store_names.__getitem__)
        languages = st.multiselect(tr("settings.languages"), list(LANGUAGES))
        ui_language = st.selectbox(
            tr("sidebar.language"), list(UI_LANGUAGE_NAMES), format_func=UI_LANGUAGE_NAMES.__getitem__
        )
        if st.form_submit_button(tr("settings.create")) and state.attempt(
            app,
            lambda s: accounts.add_agent(
                s,
                principal,
                username,
                password=password,
                role=Role(role or Role.AGENT),
                display_name=display_name,
                store_ids=assigned,
                languages=languages,
                ui_language=ui_language,
            ),
        ):
            state.flash("success", tr("settings.agent_created"))
            st.rerun()

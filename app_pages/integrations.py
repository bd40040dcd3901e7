"""Integrations (admins): webhook endpoints — add, edit, enable or disable, rotate the secret, send a test event,
see the delivery log and replay a delivery."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from engine.errors import ReplyDeskError
from engine.integrations.delivery import send_test
from engine.integrations.events import EVENT_TYPES
from engine.integrations.webhooks import (
    EndpointView,
    add_endpoint,
    deliveries,
    list_endpoints,
    replay_delivery,
    rotate_secret,
    set_active,
    update_endpoint,
)
from engine.services.stores import list_stores
from engine.ui import state
from engine.ui.container import app_services
from engine.ui.format import escape_markdown
from engine.workflow.permissions import Role

tr = state.tr
app = app_services()
user = state.require_user(app)
principal = user.principal

st.title(tr("integrations.title"))
if principal.role != Role.ADMIN:
    st.error(tr("integrations.admins_only"))
    st.stop()
st.caption(tr("integrations.intro"))

store_names = app.run(lambda s: [store.name for store in list_stores(s)])


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _act(action: object) -> object | None:
    try:
        return app.run(action)  # type: ignore[arg-type]
    except ReplyDeskError as exc:
        st.error(str(exc))
        return None


with st.expander(tr("integrations.add"), icon=":material/add_link:"), st.form("webhook-add"):
    url = st.text_input(tr("integrations.url"), placeholder="https://erp.example.com/hooks/replydesk")
    events = st.multiselect(tr("integrations.events"), EVENT_TYPES, default=list(EVENT_TYPES))
    stores = st.multiselect(tr("integrations.stores"), store_names)
    include_text = st.checkbox(tr("integrations.include_text"))
    if st.form_submit_button(tr("integrations.save"), type="primary"):
        created = _act(
            lambda s: add_endpoint(
                s, app.settings, principal, url, events, store_names=stores, include_text=include_text
            )[1]
        )
        if created:
            st.success(tr("integrations.secret_once"))
            st.code(str(created), language=None)


def _endpoint(endpoint: EndpointView) -> None:
    state_label = tr("integrations.active") if endpoint.active else tr("integrations.disabled")
    with st.expander(f"{endpoint.id} · {endpoint.url} · {state_label}", expanded=not endpoint.active):
        if endpoint.disabled_reason:
            st.error(escape_markdown(endpoint.disabled_reason))
        counts = tr(
            "integrations.counts", delivered=endpoint.delivered, pending=endpoint.pending, failed=endpoint.failed
        )
        st.caption(counts)
        with st.form(f"webhook-edit-{endpoint.id}"):
            url = st.text_input(tr("integrations.url"), value=endpoint.url)
            events = st.multiselect(tr("integrations.events"), EVENT_TYPES, default=endpoint.events)
            stores = st.multiselect(
                tr("integrations.stores"), store_names, default=[s for s in endpoint.stores if s in store_names]
            )
            include_text = st.checkbox(tr("integrations.include_text"), value=endpoint.include_text)
            if st.form_submit_button(tr("integrations.save")) and _act(
                lambda s: update_endpoint(
                    s, principal, endpoint.id, url=url, events=events, store_names=stores, include_text=include_text
                )
            ):
                st.rerun()
        cols = st.columns(3)
        toggle = tr("integrations.disable") if endpoint.active else tr("integrations.enable")
        toggled = cols[0].button(toggle, key=f"toggle-{endpoint.id}")
        if toggled and _act(lambda s: set_active(s, principal, endpoint.id, not endpoint.active)):
            st.rerun()
        if cols[1].button(tr("integrations.rotate"), key=f"rotate-{endpoint.id}"):
            secret = _act(lambda s: rotate_secret(s, app.settings, principal, endpoint.id))
            if secret:
                st.success(tr("integrations.secret_once"))
                st.code(str(secret), language=None)
        if cols[2].button(tr("integrations.test"), key=f"test-{endpoint.id}"):
            status, error = send_test(app.db, app.settings, endpoint.id)  # the POST runs outside any transaction
            if error is None:
                st.success(tr("integrations.test_ok", status=status))
            else:
                st.error(tr("integrations.test_failed", error=error))
        st.markdown(f"##### {tr('integrations.deliveries')}")
        log = app.run(lambda s: deliveries(s, endpoint.id, limit=100))
        if log:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "id": row.id,
                            tr("integrations.col.event"): row.event_type,
                            tr("integrations.col.state"): row.state,
                            tr("integrations.col.attempts"): row.attempts,
                            tr("integrations.col.status"): row.last_status,
                            tr("integrations.col.error"): row.last_error or "",
                            tr("integrations.col.created"): _when(row.created_at),
                            tr("integrations.col.next"): _when(row.next_attempt_at),
                        }
                        for row in log
                    ]
                ),
                hide_index=True,
            )
            with st.form(f"replay-{endpoint.id}"):
                delivery_id = st.selectbox("id", [row.id for row in log], label_visibility="collapsed")
                replay = st.form_submit_button(tr("integrations.replay")) and delivery_id is not None
                if replay and _act(lambda s: replay_delivery(s, principal, int(delivery_id))):
                    st.success(tr("integrations.replayed"))


endpoints = app.run(list_endpoints)
if not endpoints:
    st.info(tr("integrations.none"))
for endpoint in endpoints:
    _endpoint(endpoint)

"""Settings (admins): stores with their response target and business hours; agents with their roles, stores,
languages, skill groups and capacity."""

from __future__ import annotations

from datetime import time
from zoneinfo import available_timezones

import pandas as pd
import streamlit as st

from engine.db.base import utcnow
from engine.errors import ReplyDeskError
from engine.services import accounts, agents, mailbox_admin, sign_in, stores
from engine.services.routing import current_routing_rules
from engine.taxonomy import LANGUAGES, MARKETPLACES
from engine.ui import state
from engine.ui.calendar_form import CalendarForm, calendar_from_form, form_values
from engine.ui.container import app_services
from engine.ui.i18n import UI_LANGUAGE_NAMES
from engine.workflow.calendar import WEEKDAY_NAMES
from engine.workflow.permissions import Role

tr = state.tr
app = app_services()
user = state.require_user(app)
principal = user.principal

st.title(tr("settings.title"))
state.show_flash()

all_stores = app.run(lambda s: accounts.visible_stores(s, principal))
store_names = {s.id: s.name for s in all_stores}
tab_stores, tab_mailboxes, tab_agents = st.tabs([tr("settings.stores"), tr("health.mailboxes"), tr("settings.agents")])

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
                for s in all_stores
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


def _sla_editor() -> None:
    st.markdown(f"#### {tr('settings.sla')}")
    st.caption(tr("settings.sla_caption"))
    store_id = st.selectbox(
        tr("queue.col.store"), list(store_names), format_func=store_names.__getitem__, key="sla_store"
    )
    if store_id is None:
        return
    sla = app.run(lambda s: stores.store_sla(s, principal, store_id))
    region = next(s.region for s in all_stores if s.id == store_id)
    values = form_values(sla.calendar, region)
    zones = sorted(available_timezones())
    with st.form(f"sla_{store_id}"):
        target = st.number_input(
            tr("settings.target_minutes"), min_value=0, step=15, value=sla.target_minutes or 0,
            help=tr("settings.target_help"),
        )  # fmt: skip
        business_hours = st.checkbox(tr("settings.business_hours"), value=sla.calendar is not None)
        timezone = st.selectbox(tr("settings.timezone"), zones, index=zones.index(values.timezone))
        chosen: dict[str, tuple[time | None, time | None] | None] = {}
        for day in WEEKDAY_NAMES:
            window = values.hours[day]
            cells = st.columns([1, 1, 1])
            is_open = cells[0].checkbox(tr(f"weekday.{day}"), value=window is not None, key=f"sla_{store_id}_{day}")
            opens = cells[1].time_input(
                tr("settings.opens"), value=window[0] if window else None, key=f"sla_{store_id}_{day}_open"
            )
            closes = cells[2].time_input(
                tr("settings.closes"), value=window[1] if window else None, key=f"sla_{store_id}_{day}_close"
            )
            chosen[day] = (opens, closes) if is_open else None
        holidays = st.text_area(tr("settings.holidays"), value=values.holidays_text, help=tr("settings.holidays_help"))
        if not st.form_submit_button(tr("settings.save"), type="primary"):
            return
    hours: dict[str, tuple[time, time] | None] = {}
    for day, picked in chosen.items():
        if picked is None:
            hours[day] = None
        elif picked[0] is not None and picked[1] is not None:
            hours[day] = (picked[0], picked[1])
        elif business_hours:
            st.error(tr("settings.hours_missing", day=tr(f"weekday.{day}")))
            return
    form = CalendarForm(timezone or "UTC", hours, holidays)
    calendar = calendar_from_form(form) if business_hours else None
    if state.attempt(
        app,
        lambda s: stores.update_store_sla(
            s, principal, store_id, target_minutes=int(target) or None, calendar=calendar, now=utcnow()
        ),
    ):
        state.flash("success", tr("settings.sla_saved"))
        st.rerun()


with tab_stores:
    _sla_editor()

with tab_agents:
    team = app.run(lambda s: accounts.list_agents(s, principal))
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
                for a in team
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
        password = cols[0].text_input(tr("login.password"), type="password", help=tr("settings.sso_only_help"))
        role = cols[1].selectbox(tr("settings.role"), list(Role), format_func=lambda r: tr(f"role.{r}"))
        assigned = st.multiselect(tr("settings.stores"), list(store_names), format_func=store_names.__getitem__)
        languages = st.multiselect(tr("settings.languages"), list(LANGUAGES))
        ui_language = st.selectbox(
            tr("sidebar.language"), list(UI_LANGUAGE_NAMES), format_func=UI_LANGUAGE_NAMES.__getitem__
        )

        def create() -> object:
            new_password = agents.NewPassword.of(password) if password else agents.NewPassword.none()
            return app.run(
                lambda s: accounts.add_agent(
                    s,
                    principal,
                    username,
                    password=new_password,
                    role=Role(role or Role.AGENT),
                    display_name=display_name,
                    store_ids=assigned,
                    languages=languages,
                    ui_language=ui_language,
                )
            )

        if st.form_submit_button(tr("settings.create")) and state.attempt_steps(create):
            state.flash("success", tr("settings.agent_created"))
            st.rerun()


def _agent_editor() -> None:
    st.markdown(f"#### {tr('settings.edit_agent')}")
    team = app.run(lambda s: accounts.list_agents(s, principal))
    names = {a.id: f"{a.display_name} ({a.username})" for a in team}
    agent_id = st.selectbox(tr("settings.agent"), list(names), format_func=names.__getitem__, key="edit_agent")
    if agent_id is None:
        return
    account = app.run(lambda s: agents.agent_account(s, principal, agent_id))
    groups = sorted(set(app.run(lambda s: current_routing_rules(s, app.settings.knowledge_dir)).intent_groups.values()))
    with st.form(f"agent_edit_{agent_id}"):
        cols = st.columns(2)
        display_name = cols[0].text_input(tr("settings.display_name"), value=account.display_name)
        role = cols[1].selectbox(
            tr("settings.role"), list(Role), index=list(Role).index(account.role), format_func=lambda r: tr(f"role.{r}")
        )
        assigned = st.multiselect(
            tr("settings.stores"), list(store_names), default=account.store_ids, format_func=store_names.__getitem__
        )
        languages = st.multiselect(tr("settings.languages"), list(LANGUAGES), default=account.languages)
        skill_groups = st.multiselect(
            tr("settings.skill_groups"),
            sorted({*groups, *account.intent_groups}),
            default=account.intent_groups,
            accept_new_options=True,
            help=tr("settings.skill_groups_help"),
        )
        bottom = st.columns(3)
        capacity = bottom[0].number_input(tr("settings.capacity"), min_value=1, max_value=1000, value=account.capacity)
        active = bottom[1].checkbox(tr("settings.active"), value=account.active)
        password = bottom[2].text_input(tr("settings.new_password"), type="password", help=tr("settings.password_help"))

        def save() -> object:
            changes = agents.AgentChanges(
                display_name=display_name,
                role=Role(role or account.role),
                store_ids=assigned,
                languages=languages,
                intent_groups=skill_groups,
                capacity=int(capacity),
                active=active,
                password=agents.NewPassword.optional(password),  # hashed before the transaction
            )
            return app.run(lambda s: agents.update_agent(s, principal, agent_id, changes))

        if st.form_submit_button(tr("settings.save"), type="primary") and state.attempt_steps(save):
            state.flash("success", tr("settings.agent_saved"))
            st.rerun()
    summary = next(a for a in team if a.id == agent_id)
    if summary.locked:
        st.warning(tr("settings.agent_locked"))
        if st.button(tr("settings.unlock"), key=f"unlock_{agent_id}", icon=":material/lock_open:") and state.attempt(
            app, lambda s: sign_in.unlock(s, principal, agent_id)
        ):
            state.flash("success", tr("settings.unlocked"))
            st.rerun()
    unbind = summary.sso_bound and st.button(
        tr("settings.unbind"), key=f"unbind_{agent_id}", icon=":material/link_off:"
    )
    if unbind and state.attempt(app, lambda s: accounts.unbind_identity(s, principal, agent_id)):
        state.flash("success", tr("settings.unbound"))
        st.rerun()


with tab_agents:
    _agent_editor()


SECURITY = ["ssl", "starttls", "none"]


def _mailbox_list() -> list[mailbox_admin.MailboxView]:
    boxes = app.run(lambda s: mailbox_admin.store_mailboxes(s, principal, app.settings))
    if not boxes:
        st.info(tr("settings.no_mailboxes"))
        return boxes
    st.dataframe(
        pd.DataFrame(
            [
                {
                    tr("queue.col.store"): b.store,
                    tr("settings.mailbox_name"): b.name,
                    tr("settings.active"): b.enabled,
                    "IMAP": b.imap,
                    "SMTP": b.smtp or "—",
                    tr("login.password"): b.password or "—",
                    tr("settings.last_error"): f"{b.last_error_code}: {b.last_error}" if b.last_error_code else "—",
                }
                for b in boxes
            ]
        ),
        hide_index=True,
        use_container_width=True,
    )
    return boxes


def _mailbox_editor(boxes: list[mailbox_admin.MailboxView]) -> None:
    if not boxes:
        return
    st.markdown(f"#### {tr('settings.edit_mailbox')}")
    names = {b.id: f"{b.store} · {b.name}" for b in boxes}
    mailbox_id = st.selectbox(tr("health.mailboxes"), list(names), format_func=names.__getitem__, key="edit_mailbox")
    box = next((b for b in boxes if b.id == mailbox_id), None)
    if box is None:
        return
    with st.form(f"mailbox_edit_{box.id}"):
        enabled = st.checkbox(tr("settings.active"), value=box.enabled)
        cols = st.columns(2)
        password = cols[0].text_input(tr("settings.new_password"), type="password", key=f"mb_pw_{box.id}")
        smtp_password = cols[1].text_input(tr("settings.new_smtp_password"), type="password", key=f"mb_spw_{box.id}")
        save = st.form_submit_button(tr("settings.save"), type="primary")
    if save and state.attempt(
        app,
        lambda s: mailbox_admin.change_mailbox(
            s, principal, app.settings, box.id, enabled=enabled, password=password, smtp_password=smtp_password
        ),
    ):
        state.flash("success", tr("settings.mailbox_saved"))
        st.rerun()
    if st.button(tr("settings.test_connection"), key=f"mb_test_{box.id}", icon=":material/cable:"):
        try:
            found = app.run(lambda s: mailbox_admin.check_connection(s, principal, app.settings, box.id))
        except ReplyDeskError as exc:
            state.show_error(exc)
        else:
            st.success(found)


def _mailbox_form() -> None:
    with st.form("mailbox_add", clear_on_submit=True):
        st.markdown(f"#### {tr('settings.add_mailbox')}")
        top = st.columns(2)
        store_id = top[0].selectbox(tr("queue.col.store"), list(store_names), format_func=store_names.__getitem__)
        name = top[1].text_input(tr("settings.mailbox_name"), value="relay")
        imap = st.columns([3, 1, 1])
        imap_host = imap[0].text_input(tr("settings.imap_host"))
        imap_port = imap[1].number_input(tr("settings.port"), min_value=1, max_value=65535, value=993)
        imap_security = imap[2].selectbox(tr("settings.security"), SECURITY, key="mb_imap_security")
        login = st.columns(2)
        username = login[0].text_input(tr("settings.username"), key="mb_username")
        password = login[1].text_input(tr("login.password"), type="password", key="mb_password")
        folders = st.columns(2)
        folder = folders[0].text_input(tr("settings.folder"), value="INBOX")
        sent_folder = folders[1].text_input(tr("settings.sent_folder"), value="Sent")
        smtp = st.columns([3, 1, 1])
        smtp_host = smtp[0].text_input(tr("settings.smtp_host"))
        smtp_port = smtp[1].number_input(tr("settings.port"), min_value=1, max_value=65535, value=587, key="mb_smtp")
        smtp_security = smtp[2].selectbox(tr("settings.security"), SECURITY, index=1, key="mb_smtp_security")
        if store_id is None or not st.form_submit_button(tr("settings.create")):
            return
    if state.attempt(
        app,
        lambda s: mailbox_admin.add_store_mailbox(
            s,
            principal,
            app.settings,
            store_id,
            name=name.strip(),
            imap_host=imap_host.strip(),
            imap_port=int(imap_port),
            imap_security=imap_security or "ssl",
            username=username.strip(),
            password=password,
            folder=folder.strip() or "INBOX",
            sent_folder=sent_folder.strip() or "Sent",
            smtp_host=smtp_host.strip() or None,
            smtp_port=int(smtp_port),
            smtp_security=smtp_security or "starttls",
        ),
    ):
        state.flash("success", tr("settings.mailbox_added"))
        st.rerun()


with tab_mailboxes:
    st.caption(tr("settings.mailboxes_caption"))
    _mailbox_editor(_mailbox_list())
    _mailbox_form()

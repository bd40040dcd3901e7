"""ReplyDesk's Streamlit app: navigation, the services built once per process, the signed-in agent.

Run with `streamlit run streamlit_app.py` (or `make run`). Pages live in `app_pages/` and call only
`engine` services; permissions are checked by those services, the navigation just hides what a role
cannot use.
"""

from __future__ import annotations

import streamlit as st

from engine.services import agents
from engine.ui import state
from engine.ui.container import app_services
from engine.ui.i18n import UI_LANGUAGE_NAMES
from engine.workflow.permissions import Role

st.set_page_config(page_title="ReplyDesk", page_icon=":material/mark_email_read:", layout="wide")

app = app_services()
user = state.current_user(app)
tr = state.tr


def _page(path: str, key: str, icon: str, **options: object) -> st.Page:
    return st.Page(path, title=tr(key), icon=icon, **options)  # type: ignore[arg-type]


if user is None:
    navigation = st.navigation([_page("app_pages/login.py", "nav.login", ":material/login:", default=True)])
else:
    sections: dict[str, list[st.Page]] = {
        tr("nav.section.work"): [
            _page("app_pages/queue.py", "nav.queue", ":material/inbox:", default=True),
            _page("app_pages/conversation.py", "nav.conversation", ":material/forum:", visibility="hidden"),
        ]
    }
    if user.principal.role in (Role.LEAD, Role.ADMIN):
        sections[tr("nav.section.curation")] = [
            _page("app_pages/knowledge.py", "nav.knowledge", ":material/menu_book:"),
            _page("app_pages/templates.py", "nav.templates", ":material/article:"),
            _page("app_pages/intents.py", "nav.intents", ":material/label:"),
            _page("app_pages/statistics.py", "nav.statistics", ":material/bar_chart:"),
            _page("app_pages/routing.py", "nav.routing", ":material/alt_route:"),
            _page("app_pages/eval_runs.py", "nav.evals", ":material/science:"),
        ]
    system = [_page("app_pages/health.py", "nav.health", ":material/monitor_heart:")]
    if user.principal.role == Role.ADMIN:
        system.append(_page("app_pages/settings.py", "nav.settings", ":material/settings:"))
        system.append(_page("app_pages/integrations.py", "nav.integrations", ":material/webhook:"))
    sections[tr("nav.section.system")] = system
    navigation = st.navigation(sections)

with st.sidebar:
    languages = list(UI_LANGUAGE_NAMES)
    chosen = st.selectbox(
        tr("sidebar.language"),
        languages,
        index=languages.index(state.language()) if state.language() in languages else 0,
        format_func=lambda code: UI_LANGUAGE_NAMES[code],
    )
    if chosen != state.language():
        st.session_state[state.LANGUAGE] = chosen
        st.rerun()
    if user is not None:
        st.caption(tr("sidebar.signed_in", name=user.display_name, role=tr(f"role.{user.principal.role}")))
        available = st.toggle(tr("sidebar.available"), value=user.available, help=tr("sidebar.available_help"))
        if available != user.available:
            principal = user.principal
            app.run(lambda session: agents.set_availability(session, principal, available))
            st.rerun()
        if st.button(tr("sidebar.logout"), icon=":material/logout:"):
            if state.sign_out():
                st.stop()  # the logout redirect reloads the app
            st.rerun()

if user is not None and app.run(agents.demo_accounts_active):
    st.warning(tr("demo.banner"), icon=":material/warning:")

navigation.run()

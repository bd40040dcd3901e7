"""The review queue, most urgent by Amazon's 24 h clock first; refreshes itself without losing the agent's place."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from engine.db.base import utcnow
from engine.db.models import ConversationStatus
from engine.services.accounts import visible_stores
from engine.services.conversations import recent_tags
from engine.services.queue import ACTIVE_STATUSES, QueueFilters, list_queue
from engine.taxonomy import INTENTS, LANGUAGES, MARKETPLACES
from engine.ui import state
from engine.ui.container import app_services
from engine.ui.format import escape_markdown, sla_markdown

PAGE_SIZE = 25
REFRESH_EVERY = timedelta(seconds=30)
PAGE_KEY = "queue_page"

tr = state.tr
app = app_services()
user = state.require_user(app)
principal = user.principal
lang = state.language()
stores = app.run(lambda session: visible_stores(session, principal))
store_names = {s.id: s.name for s in stores}
statuses = [str(s) for s in ConversationStatus]
known_tags = app.run(lambda session: recent_tags(session, principal))

st.title(tr("queue.title"))
state.show_flash()


def _reset_page() -> None:
    st.session_state[PAGE_KEY] = 1


with st.expander(tr("queue.filters"), expanded=False), st.form("queue_filters"):
    left, middle, right = st.columns(3)
    left.multiselect(tr("queue.store"), list(store_names), format_func=store_names.__getitem__, key="f_stores")
    left.multiselect(tr("queue.marketplace"), list(MARKETPLACES), key="f_marketplaces")
    middle.multiselect(tr("queue.language"), list(LANGUAGES), key="f_languages")
    middle.multiselect(tr("queue.intent"), list(INTENTS), format_func=lambda i: tr(f"intent.{i}"), key="f_intents")
    right.multiselect(
        tr("queue.status"),
        statuses,
        default=[str(s) for s in ACTIVE_STATUSES],
        format_func=lambda s: tr(f"status.{s}"),
        key="f_statuses",
    )
    right.selectbox(
        tr("queue.assignee"), ["anyone", "me"], format_func=lambda a: tr(f"queue.assignee.{a}"), key="f_assignee"
    )
    right.checkbox(tr("queue.blocked_only"), key="f_blocked")
    left.selectbox(
        tr("queue.tag"), [None, *known_tags], format_func=lambda t: tr("queue.any_tag") if t is None else t, key="f_tag"
    )
    st.form_submit_button(tr("queue.apply"), on_click=_reset_page)

filters = QueueFilters(
    statuses=tuple(st.session_state.get("f_statuses") or [str(s) for s in ACTIVE_STATUSES]),
    store_ids=tuple(st.session_state.get("f_stores") or ()),
    marketplaces=tuple(st.session_state.get("f_marketplaces") or ()),
    languages=tuple(st.session_state.get("f_languages") or ()),
    intents=tuple(st.session_state.get("f_intents") or ()),
    assignee_id=principal.agent_id if st.session_state.get("f_assignee") == "me" else None,
    blocked_only=bool(st.session_state.get("f_blocked")),
    tag=st.session_state.get("f_tag"),
)


def _go_to(page: int) -> None:
    st.session_state[PAGE_KEY] = page


@st.fragment(run_every=REFRESH_EVERY)
def queue_list() -> None:
    if state.idle_expired(app):  # the auto-refresh is no activity: a full rerun signs the idle session out
        st.rerun()
    now = utcnow()
    page = int(st.session_state.get(PAGE_KEY, 1))
    result = app.run(lambda session: list_queue(session, principal, filters, page=page, page_size=PAGE_SIZE, now=now))
    pages = max(1, -(-result.total // PAGE_SIZE))
    if page > pages:  # the queue shrank under the agent: stay on its last page
        page = pages
        st.session_state[PAGE_KEY] = page
        result = app.run(
            lambda session: list_queue(session, principal, filters, page=page, page_size=PAGE_SIZE, now=now)
        )

    counts = st.columns(len(statuses))
    for column, status in zip(counts, statuses, strict=True):
        column.metric(tr(f"status.{status}"), result.counts.get(status, 0))
    st.caption(tr("queue.summary", total=result.total, time=now.strftime("%H:%M:%S UTC")))
    if not result.rows:
        st.info(tr("queue.empty"))
        return

    widths = [1.3, 1.2, 3.2, 1.3, 1.0, 1.1, 0.8]
    header = st.columns(widths)
    for column, key in zip(
        header, ("time_left", "store", "subject", "intent", "status", "assignee", "open"), strict=True
    ):
        column.markdown(f"**{tr('queue.col.' + key)}**")
    for row in result.rows:
        cells = st.columns(widths, vertical_alignment="center")
        left = row.amazon_deadline - now if row.amazon_deadline else None
        cells[0].markdown(sla_markdown(row.sla, left, lang))
        cells[1].markdown(escape_markdown(f"{row.store} · {row.marketplace or '—'}"))
        subject = escape_markdown(row.subject or "—")
        buyer = escape_markdown(row.buyer_name or "")
        blocked = " :red[" + tr("queue.blocked") + "]" if row.draft_allowed is False else ""
        tags = "".join(f" :blue-badge[{escape_markdown(tag)}]" for tag in row.tags)
        cells[2].markdown(f"{subject}  \n:gray[{buyer}]{blocked}{tags}")
        cells[3].markdown(f"{tr('intent.' + row.intent) if row.intent else '—'} · {row.language or '—'}")
        cells[4].markdown(tr(f"status.{row.status}"))
        working = f"  \n:violet[{tr('queue.working', name=escape_markdown(row.claimed_by))}]" if row.claimed_by else ""
        cells[5].markdown(escape_markdown(row.assignee or "—") + working)
        if cells[6].button(tr("queue.open"), key=f"open_{row.conversation_id}"):
            state.open_conversation(row.conversation_id)

    previous, label, following = st.columns([1, 2, 1])
    previous.button(tr("queue.previous"), disabled=page <= 1, on_click=_go_to, args=(page - 1,), key="queue_prev")
    label.markdown(tr("queue.page", page=page, pages=pages))
    following.button(tr("queue.next"), disabled=page >= pages, on_click=_go_to, args=(page + 1,), key="queue_next")


queue_list()

"""Statistics (leads): volume, response times, per-agent work, draft quality, buyer satisfaction,
recurring questions; drill-down to conversations and CSV export."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, time, timedelta

import pandas as pd
import streamlit as st

from engine.db.base import utcnow
from engine.services import stats
from engine.ui import state
from engine.ui.container import app_services
from engine.ui.format import duration, escape_markdown, percent, to_csv
from engine.workflow.permissions import Principal, Role

tr = state.tr
app = app_services()
user = state.require_user(app)
principal = user.principal
lang = state.language()

st.title(tr("stats.title"))
now = utcnow()
today = now.date()
period = st.date_input(tr("stats.period"), value=(today - timedelta(days=29), today), max_value=today, key="st_period")
first, last = period if isinstance(period, tuple) and len(period) == 2 else (today - timedelta(days=29), today)
since = datetime.combine(first, time.min, tzinfo=UTC)
until = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)


StatsResult = tuple[
    stats.Volume,
    stats.ResponseTimes,
    list[stats.AgentRow],
    stats.DraftQuality,
    stats.Satisfaction,
    list[stats.RecurringQuestion],
]


# Heavy aggregates over months of mail: computed once a minute per user, database and period; the key holds
# the principal, so no user ever sees figures computed for another.
@st.cache_data(ttl=90, show_spinner=False, max_entries=64)
def load(database: str, agent_id: int, role: str, store_ids: tuple[int, ...], since: datetime, until: datetime,
         minute: datetime) -> StatsResult:  # fmt: skip
    who = Principal(agent_id=agent_id, role=Role(role), store_ids=frozenset(store_ids))
    with app.transaction() as s:
        return (
            stats.volume(s, who, since=since, until=until, now=minute),
            stats.response_times(s, who, since=since, until=until, now=minute),
            stats.agents(s, who, since=since, until=until, now=minute),
            stats.draft_quality(s, who, since=since, until=until, now=minute),
            stats.satisfaction(s, who, since=since, until=until, now=minute),
            stats.recurring_questions(s, who, since=since, until=until, now=minute),
        )


volume, times, agent_rows, quality, happiness, questions = load(
    app.db.url,
    principal.agent_id,
    principal.role.value,
    tuple(sorted(principal.store_ids)),
    since,
    until,
    now.replace(second=0, microsecond=0),
)


def bar(counts: dict[str, int], label: str) -> None:
    if counts:
        st.bar_chart(pd.DataFrame({label: list(counts.values())}, index=list(counts.keys())))
    else:
        st.caption(tr("stats.no_data"))


def download(rows: list[dict[str, object]], name: str) -> None:
    st.download_button(
        tr("stats.csv"),
        to_csv(rows),
        file_name=f"replydesk-{name}-{first}-{last}.csv",
        mime="text/csv",
        key=f"csv_{name}",
        disabled=not rows,
        icon=":material/download:",
    )


overview = st.columns(5)
overview[0].metric(tr("stats.messages"), volume.total)
overview[1].metric(tr("stats.median"), duration(times.median_seconds, lang))
overview[2].metric(tr("stats.p90"), duration(times.p90_seconds, lang))
overview[3].metric(tr("stats.sla_hit"), percent(times.sla_hit_rate))
overview[4].metric(tr("stats.acceptance"), percent(quality.overall.acceptance_rate))
late = st.columns(len(times.late_rates))
for column, (window_days, rate) in zip(late, times.late_rates.items(), strict=True):
    column.metric(tr("stats.late_rate", days=window_days), percent(rate))

tab_volume, tab_agents, tab_quality, tab_buyers, tab_drill = st.tabs(
    [
        tr("stats.tab.volume"),
        tr("stats.tab.agents"),
        tr("stats.tab.quality"),
        tr("stats.tab.buyers"),
        tr("stats.tab.drill"),
    ]
)

with tab_volume:
    days = dict.fromkeys(stats.day_range(since, until), 0) | dict(volume.by_day)
    st.markdown(f"**{tr('stats.by_day')}**")
    st.line_chart(pd.DataFrame({tr("stats.messages"): list(days.values())}, index=list(days.keys())))
    left, right = st.columns(2)
    for column, title, counts in (
        (
            left,
            "stats.by_intent",
            {tr(f"intent.{k}") if k != stats.UNKNOWN else k: v for k, v in volume.by_intent.items()},
        ),
        (right, "stats.by_language", volume.by_language),
        (left, "stats.by_marketplace", volume.by_marketplace),
        (right, "stats.by_store", volume.by_store),
    ):
        with column:
            st.markdown(f"**{tr(title)}**")
            bar(counts, tr("stats.messages"))
    download([{"day": k, "messages": v} for k, v in days.items()], "volume")

with tab_agents:
    rows = [
        {
            tr("stats.agent"): r.name,
            tr("stats.handled"): r.handled,
            tr("stats.sent"): r.sent,
            tr("stats.rejected"): r.rejected,
            tr("stats.median"): duration(r.median_response_seconds, lang),
        }
        for r in agent_rows
    ]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)
    else:
        st.caption(tr("stats.no_data"))
    download([asdict(r) for r in agent_rows], "agents")

with tab_quality:
    overall = quality.overall
    cols = st.columns(4)
    cols[0].metric(tr("stats.unchanged"), overall.unchanged)
    cols[1].metric(tr("stats.edited"), overall.edited)
    cols[2].metric(tr("stats.rejected"), overall.rejected)
    cols[3].metric(
        tr("stats.edit_distance"), "—" if overall.mean_edit_distance is None else f"{overall.mean_edit_distance:.3f}"
    )
    export: list[dict[str, object]] = []
    for title, table in (
        ("stats.by_intent", quality.by_intent),
        ("stats.by_language", quality.by_language),
        ("stats.by_template", quality.by_template),
        ("stats.by_drafter", quality.by_drafter),
    ):
        st.markdown(f"**{tr(title)}**")
        rows = [
            {
                tr("stats.key"): a.key,
                tr("stats.unchanged"): a.unchanged,
                tr("stats.edited"): a.edited,
                tr("stats.rejected"): a.rejected,
                tr("stats.acceptance"): percent(a.acceptance_rate),
                tr("stats.edit_distance"): None if a.mean_edit_distance is None else round(a.mean_edit_distance, 3),
            }
            for a in table
        ]
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)
        else:
            st.caption(tr("stats.no_data"))
        export += [
            {
                "dimension": title.removeprefix("stats.by_"),
                "key": a.key,
                "unchanged": a.unchanged,
                "edited": a.edited,
                "rejected": a.rejected,
                "mean_edit_distance": a.mean_edit_distance,
            }
            for a in table
        ]
    st.markdown(f"**{tr('stats.rejection_reasons')}**")
    bar(dict(quality.rejection_reasons), tr("stats.rejected"))
    download(export, "draft-quality")

with tab_buyers:
    cols = st.columns(4)
    cols[0].metric(tr("stats.replies"), happiness.replies)
    cols[1].metric(tr("stats.positive"), percent(happiness.positive_share))
    cols[2].metric(tr("stats.negative"), percent(happiness.negative_share))
    cols[3].metric(tr("stats.no_follow_up"), happiness.no_follow_up)
    st.caption(tr("stats.satisfaction_help"))
    st.markdown(f"**{tr('stats.recurring')}**")
    for question in questions:
        st.caption(f"{question.drafts} × · {tr('intent.' + question.intent)} · {question.language}")
        st.text(question.question)
    if not questions:
        st.caption(tr("stats.no_data"))
    download([asdict(q) for q in questions], "recurring-questions")

with tab_drill:
    dimensions = [*stats.VOLUME_DIMENSIONS, *stats.DRAFT_DIMENSIONS]
    dimension = st.selectbox(
        tr("stats.dimension"), dimensions, format_func=lambda d: tr(f"stats.dim.{d}"), key="drill_dimension"
    )
    values = {
        "day": [k for k, _ in volume.by_day],
        "intent": list(volume.by_intent),
        "language": list(volume.by_language),
        "marketplace": list(volume.by_marketplace),
        "store": list(volume.by_store),
        "template": [a.key for a in quality.by_template],
        "drafter": [a.key for a in quality.by_drafter],
        "rejection_reason": [r for r, _ in quality.rejection_reasons],
    }[dimension]
    if not values:
        st.caption(tr("stats.no_data"))
    else:
        value = st.selectbox(tr("stats.value"), values, key=f"drill_value_{dimension}")
        refs = app.run(
            lambda s: stats.conversations_for(
                s, principal, dimension=dimension, value=value, since=since, until=until, now=now
            )
        )
        st.caption(tr("stats.conversations", count=len(refs)))
        for ref in refs:
            row = st.columns([4, 2, 1])
            row[0].markdown(escape_markdown(ref.subject or "—"))
            row[1].markdown(escape_markdown(f"{ref.store} · {ref.marketplace or '—'} · {ref.status}"))
            if row[2].button(tr("queue.open"), key=f"drill_open_{ref.conversation_id}"):
                state.open_conversation(ref.conversation_id)
        download([asdict(r) for r in refs], f"conversations-{dimension}")

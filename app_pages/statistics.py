"""Statistics (leads): volume, response times, per-agent work, draft quality, buyer satisfaction,
recurring questions; CSV export. Clicking a bar of a chart (or choosing it in two select boxes) lists that
bar's conversations below the tabs."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, time, timedelta
from functools import partial

import pandas as pd
import streamlit as st

from engine.db.base import utcnow
from engine.services import stats
from engine.ui import charts, state
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


DIMENSIONS = [*stats.VOLUME_DIMENSIONS, *stats.DRAFT_DIMENSIONS]
DRILL_DIMENSION = "drill_dimension"
CHART_ROUNDS = "stats_chart_rounds"  # per dimension: bumped to redraw a chart without its old selection

days = stats.day_range(since, until)
bars = charts.drill_down_bars(
    volume,
    quality,
    days,
    intent_label=lambda intent: tr(f"intent.{intent}"),
    outcome_label=lambda outcome: tr(f"stats.{outcome}"),
)


def value_select_key(dimension: str) -> str:
    return f"drill_value_{dimension}"


def chart_key(dimension: str) -> str:
    return f"chart_{dimension}_{st.session_state.get(CHART_ROUNDS, {}).get(dimension, 0)}"


def redraw_charts(keep: str | None = None) -> None:
    """Redraw every chart but `keep`, so only the current pick stays highlighted."""
    rounds = dict(st.session_state.get(CHART_ROUNDS, {}))
    for dimension in DIMENSIONS:
        if dimension != keep:
            rounds[dimension] = rounds.get(dimension, 0) + 1
    st.session_state[CHART_ROUNDS] = rounds


def on_bar_clicked(dimension: str, key: str) -> None:
    """A click on a bar fills the drill-down select boxes, which the conversation list follows."""
    picked = charts.picked_key(st.session_state.get(key))
    if picked is None:  # clicked beside the bars: drop this chart's pick
        if st.session_state.get(DRILL_DIMENSION) == dimension:
            st.session_state[value_select_key(dimension)] = None
        return
    st.session_state[DRILL_DIMENSION] = dimension
    st.session_state[value_select_key(dimension)] = picked
    redraw_charts(keep=dimension)


def bar_chart(
    dimension: str, title: str, count_title: str, *, horizontal: bool = True, part_title: str | None = None
) -> None:
    st.markdown(f"**{tr(title)}**")
    if not charts.keys(bars[dimension]):
        st.caption(tr("stats.no_data"))
        return
    key = chart_key(dimension)
    spec = charts.bar_spec(
        bars[dimension],
        category_title=tr(f"stats.dim.{dimension}"),
        count_title=count_title,
        horizontal=horizontal,
        part_title=part_title,
        picked=drill_value if dimension == drill_dimension else None,
    )
    st.vega_lite_chart(
        spec,
        key=key,
        on_select=partial(on_bar_clicked, dimension, key),
        selection_mode=charts.PICK,
        width="stretch",
        alt=tr(title),
    )


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


def conversations_behind(dimension: str, value: str) -> None:
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


overview = st.columns(5)
overview[0].metric(tr("stats.messages"), volume.total)
overview[1].metric(tr("stats.median"), duration(times.median_seconds, lang))
overview[2].metric(tr("stats.p90"), duration(times.p90_seconds, lang))
overview[3].metric(tr("stats.sla_hit"), percent(times.sla_hit_rate))
overview[4].metric(tr("stats.acceptance"), percent(quality.overall.acceptance_rate))
late = st.columns(len(times.late_rates))
for column, (window_days, rate) in zip(late, times.late_rates.items(), strict=True):
    column.metric(tr("stats.late_rate", days=window_days), percent(rate))

tab_volume, tab_agents, tab_quality, tab_buyers = st.tabs(
    [tr("stats.tab.volume"), tr("stats.tab.agents"), tr("stats.tab.quality"), tr("stats.tab.buyers")]
)

# Below the tabs, so the list shows whichever tab holds the clicked chart; built before the tabs' content
# because the charts highlight its pick.
with st.container():
    st.divider()
    st.subheader(tr("stats.drill_title"))
    st.caption(tr("stats.drill_help"))
    chooser = st.columns(2)
    drill_dimension = chooser[0].selectbox(
        tr("stats.dimension"),
        DIMENSIONS,
        format_func=lambda d: tr(f"stats.dim.{d}"),
        key=DRILL_DIMENSION,
        on_change=redraw_charts,
    )
    labels = {bar.key: bar.label for bar in bars[drill_dimension]}
    drill_value = chooser[1].selectbox(
        tr("stats.value"),
        charts.keys(bars[drill_dimension]),
        index=None,
        format_func=lambda key: labels.get(key, key),
        placeholder=tr("stats.pick_value"),
        key=value_select_key(drill_dimension),
        on_change=redraw_charts,
    )
    if drill_value is not None:
        conversations_behind(drill_dimension, drill_value)

with tab_volume:
    bar_chart("day", "stats.by_day", tr("stats.messages"), horizontal=False)
    left, right = st.columns(2)
    for column, dimension in ((left, "intent"), (right, "language"), (left, "marketplace"), (right, "store")):
        with column:
            bar_chart(dimension, f"stats.by_{dimension}", tr("stats.messages"))
    download([{"day": bar.key, "messages": bar.count} for bar in bars["day"]], "volume")

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
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
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
        dimension = title.removeprefix("stats.by_")
        if dimension in stats.DRAFT_DIMENSIONS and table:
            bar_chart(dimension, title, tr("stats.drafts"), part_title=tr("stats.outcome"))
        else:
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
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
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
    bar_chart("rejection_reason", "stats.rejection_reasons", tr("stats.rejected"))
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

"""Sync & health: mailboxes, last sync and lag, recent sync runs, quarantined mail (with retry), outbox
states, alerts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.db.base import utcnow
from engine.errors import ReplyDeskError
from engine.services.health import health
from engine.sync.quarantine import retry_quarantined
from engine.ui import state
from engine.ui.container import app_services
from engine.ui.format import duration, escape_markdown

tr = state.tr
app = app_services()
user = state.require_user(app)
lang = state.language()

st.title(tr("health.title"))
now = utcnow()
report = app.run(lambda s: health(s, user.principal, now=now, sync_interval_seconds=app.settings.sync_interval_seconds))

st.markdown(f"#### {tr('health.alerts')}")
if not report.alerts:
    st.success(tr("health.no_alerts"))
for alert in report.alerts:
    text = tr(f"health.alert.{alert.code}", subject=alert.subject, count=alert.count)
    detail = f" — {escape_markdown(alert.detail)}" if alert.detail else ""
    (st.error if alert.level == "error" else st.warning)(escape_markdown(text) + detail)

cols = st.columns(4)
cols[0].metric(tr("health.overdue"), report.overdue)
cols[1].metric(tr("health.unparsed"), report.unparsed)
cols[2].metric(tr("health.quarantined"), len(report.quarantined))
cols[3].metric(tr("health.outbox_waiting"), report.outbox.get("approved", 0) + report.outbox.get("sending", 0))

st.markdown(f"#### {tr('health.mailboxes')}")
if report.mailboxes:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    tr("queue.col.store"): m.store,
                    tr("health.mailbox"): m.name,
                    tr("health.enabled"): m.enabled,
                    tr("health.last_sync"): m.last_synced_at.strftime("%Y-%m-%d %H:%M UTC")
                    if m.last_synced_at
                    else "—",
                    tr("health.lag"): duration(m.lag.total_seconds() if m.lag else None, lang),
                    tr("health.newest_mail"): m.newest_mail_at.strftime("%Y-%m-%d %H:%M UTC")
                    if m.newest_mail_at
                    else "—",
                    tr("health.error"): m.last_error or "",
                }
                for m in report.mailboxes
            ]
        ),
        hide_index=True,
        use_container_width=True,
    )
else:
    st.info(tr("health.no_mailboxes"))

if report.quarantined:
    st.markdown(f"#### {tr('health.quarantine')}")
    st.caption(tr("health.quarantine_help"))
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "#": q.id,
                    tr("queue.col.store"): q.store,
                    tr("health.mailbox"): q.mailbox,
                    tr("health.uid"): q.uid,
                    tr("health.size"): q.size,
                    tr("health.reason"): q.reason,
                    tr("health.raw_kept"): q.raw_kept,
                    tr("health.attempts"): q.attempts,
                }
                for q in report.quarantined
            ]
        ),
        hide_index=True,
        use_container_width=True,
    )
    with st.form("retry_quarantined"):
        picked = st.selectbox(
            tr("health.retry_pick"),
            [q.id for q in report.quarantined],
            format_func=lambda qid: next(f"#{q.id} {q.mailbox} UID {q.uid}" for q in report.quarantined if q.id == qid),
        )
        if st.form_submit_button(tr("health.retry")) and picked is not None:
            try:
                outcome = retry_quarantined(app.db, app.settings, int(picked), principal=user.principal)
            except ReplyDeskError as exc:
                st.error(str(exc))
            else:
                if outcome.stored:
                    st.success(tr("health.retry_stored", id=outcome.message_row_id, status=outcome.status))
                else:
                    st.error(tr("health.retry_failed", reason=outcome.reason or ""))

st.markdown(f"#### {tr('health.outbox')}")
if report.outbox:
    st.bar_chart(
        pd.DataFrame(
            {tr("health.items"): list(report.outbox.values())}, index=[tr(f"outbox.{k}") for k in report.outbox]
        )
    )
else:
    st.caption(tr("stats.no_data"))

st.markdown(f"#### {tr('health.runs')}")
if report.runs:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    tr("health.started"): r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                    tr("health.mailbox"): r.mailbox or r.kind,
                    tr("health.status"): r.status,
                    tr("health.fetched"): r.fetched,
                    tr("health.new"): r.new,
                    tr("health.duplicates"): r.duplicates,
                    tr("health.unparsed"): r.unparsed,
                    tr("health.quarantined"): r.quarantined,
                    tr("health.error"): "; ".join(str(e.get("message", "")) for e in r.errors),
                }
                for r in report.runs
            ]
        ),
        hide_index=True,
        use_container_width=True,
    )
else:
    st.caption(tr("stats.no_data"))

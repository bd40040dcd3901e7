"""Evals (leads): stored eval runs, two compared side by side with metric deltas, and each run's report."""

from __future__ import annotations

import streamlit as st

from engine.services import eval_runs
from engine.ui import state
from engine.ui.container import app_services

tr = state.tr
app = app_services()
user = state.require_user(app)
principal = user.principal

st.title(tr("evals.title"))
st.caption(tr("evals.caption"))
runs = eval_runs.eval_runs(principal)  # refuses anyone below lead
if not runs:
    st.info(tr("evals.none"))
    st.stop()

st.dataframe(
    [{"run": r.path.name, "suite": r.suite, "profile": r.profile, "gate": r.gate, "metrics": r.metrics} for r in runs],
    hide_index=True,
)
labels = [r.label for r in runs]
left, right = st.columns(2)
before_label = left.selectbox(tr("evals.before"), labels, index=min(1, len(labels) - 1))
after_label = right.selectbox(tr("evals.after"), labels, index=0)
before, after = runs[labels.index(before_label)], runs[labels.index(after_label)]

changed_only = st.toggle(tr("evals.changed_only"), value=True)
rows = eval_runs.delta_rows(eval_runs.compare(principal, before, after), changed_only=changed_only)
worse = sum(1 for row in rows if row["verdict"] == "worse")
better = sum(1 for row in rows if row["verdict"] == "better")
st.metric(tr("evals.better_worse"), f"{better} / {worse}")
st.dataframe(rows, hide_index=True, use_container_width=True)

with st.expander(tr("evals.report")):
    # st.html sanitises the report (no scripts, no event handlers), so even a tampered file runs no code.
    st.html(eval_runs.report(principal, after))

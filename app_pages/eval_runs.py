"""Evals (leads): stored eval runs, two compared side by side with metric deltas, and each run's report."""

from __future__ import annotations

import streamlit as st
import streamlit.components.v1 as components

from engine.ui import state
from engine.ui.container import app_services
from engine.workflow.permissions import Action, require
from evals.runs_index import compare_runs, delta_rows, list_runs, load_run, report_html

app = app_services()
user = state.require_user(app)
require(user.principal, Action.RUN_EVALS)

st.title("Evals")
st.caption("Runs of `replydesk eval` stored under evals/runs/. Run `make eval` to add one.")
runs = list_runs()
if not runs:
    st.info("No eval runs yet: run `replydesk eval all` (or `make eval`).")
    st.stop()

st.dataframe(
    [
        {"run": r.path.name, "suite": r.suite, "profile": r.profile, "gate": r.gate, "metrics": r.metrics}
        for r in runs
    ],
    hide_index=True,
)
labels = [r.label for r in runs]
left, right = st.columns(2)
before_label = left.selectbox("Before", labels, index=min(1, len(labels) - 1))
after_label = right.selectbox("After", labels, index=0)
before, after = runs[labels.index(before_label)], runs[labels.index(after_label)]

changed_only = st.toggle("Only changed metrics", value=True)
rows = delta_rows(compare_runs(load_run(before.path), load_run(after.path)), changed_only=changed_only)
worse = sum(1 for row in rows if row["verdict"] == "worse")
better = sum(1 for row in rows if row["verdict"] == "better")
st.metric("Tracked metrics better / worse", f"{better} / {worse}")
st.dataframe(rows, hide_index=True, use_container_width=True)

with st.expander("Report of the 'After' run"):
    # The report is our own self-contained HTML with every data value escaped; shown in a sandboxed frame.
    components.html(report_html(after.path), height=900, scrolling=True)

"""Routing rules (leads): which skill group handles each intent, which intents jump the queue, and whether
a conversation waits for an agent who speaks its language."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.services.routing import current_routing_rules, save_routing_rules
from engine.taxonomy import INTENTS
from engine.ui import state
from engine.ui.container import app_services

tr = state.tr
app = app_services()
user = state.require_user(app)
principal = user.principal
knowledge_dir = app.settings.knowledge_dir

st.title(tr("routing.title"))
st.caption(tr("routing.caption"))
state.show_flash()

rules = app.run(lambda s: current_routing_rules(s, knowledge_dir))
table = pd.DataFrame(
    [
        {
            "intent": intent,
            "label": tr(f"intent.{intent}"),
            "group": rules.intent_groups.get(intent, ""),
            "priority": int(rules.priority.get(intent, 0)),
        }
        for intent in INTENTS
    ]
)
with st.form("routing_rules"):
    edited = st.data_editor(
        table,
        column_config={
            "intent": None,  # the id stays in the data, the label is what people read
            "label": st.column_config.TextColumn(tr("queue.intent"), disabled=True),
            "group": st.column_config.TextColumn(tr("routing.group"), help=tr("routing.group_help"), max_chars=40),
            "priority": st.column_config.NumberColumn(
                tr("routing.priority"), help=tr("routing.priority_help"), min_value=-100, max_value=100, step=1
            ),
        },
        hide_index=True,
        use_container_width=True,
        num_rows="fixed",
        key="routing_table",
    )
    language_required = st.checkbox(
        tr("routing.language_required"), value=rules.language_required, help=tr("routing.language_required_help")
    )
    if st.form_submit_button(tr("routing.save"), type="primary"):
        rows = edited.fillna({"group": "", "priority": 0}).to_dict("records")  # a cleared cell comes back empty
        data = {
            "intent_groups": {row["intent"]: str(row["group"]).strip() for row in rows if str(row["group"]).strip()},
            "priority": {row["intent"]: int(row["priority"]) for row in rows if int(row["priority"])},
            "language_required": language_required,
        }
        if state.attempt(app, lambda s: save_routing_rules(s, principal, data, knowledge_dir=knowledge_dir)):
            state.flash("success", tr("routing.saved"))
            st.rerun()

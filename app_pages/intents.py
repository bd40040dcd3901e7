"""Intent examples (leads): review agents' corrections, add examples, retrain the classifier."""

from __future__ import annotations

import streamlit as st

from engine.errors import ReplyDeskError
from engine.services import curation
from engine.taxonomy import INTENTS, LANGUAGES
from engine.ui import state
from engine.ui.container import app_services

tr = state.tr
app = app_services()
user = state.require_user(app)
principal = user.principal

st.title(tr("intents.title"))
state.show_flash()

status = st.segmented_control(
    tr("intents.status"),
    ["pending", "accepted", "rejected"],
    default="pending",
    key="ex_status",
    format_func=lambda s: tr(f"intents.status.{s}"),
)
examples = app.run(lambda s: curation.list_examples(s, principal, status=status or "pending"))
if not examples:
    st.info(tr("intents.none"))


def _review(example: curation.ExampleView) -> None:
    with st.container(border=True):
        st.caption(f"#{example.id} · {example.source} · {example.language or '—'}")
        st.text(example.text)
        cols = st.columns([2, 1, 1])
        label = cols[0].selectbox(
            tr("queue.intent"),
            INTENTS,
            index=INTENTS.index(example.intent),
            format_func=lambda i: tr(f"intent.{i}"),
            key=f"ex_intent_{example.id}",
        )
        if cols[1].button(tr("intents.accept"), key=f"ex_accept_{example.id}") and state.attempt(
            app, lambda s: curation.review_example(s, principal, example.id, accept=True, intent=label)
        ):
            state.flash("success", tr("intents.reviewed"))
            st.rerun()
        if cols[2].button(tr("intents.reject"), key=f"ex_reject_{example.id}") and state.attempt(
            app, lambda s: curation.review_example(s, principal, example.id, accept=False)
        ):
            state.flash("success", tr("intents.reviewed"))
            st.rerun()


for example in examples:
    _review(example)

st.divider()
with st.form("ex_add", clear_on_submit=True):
    st.markdown(f"#### {tr('intents.add')}")
    text = st.text_area(tr("intents.text"))
    intent_column, language_column = st.columns(2)
    intent = intent_column.selectbox(tr("queue.intent"), INTENTS, format_func=lambda i: tr(f"intent.{i}"))
    language = language_column.selectbox(tr("queue.language"), LANGUAGES)
    if st.form_submit_button(tr("intents.add_submit")) and state.attempt(
        app, lambda s: curation.add_example(s, principal, text=text, intent=intent, language=language)
    ):
        state.flash("success", tr("intents.added"))
        st.rerun()

st.divider()
st.caption(tr("intents.retrain_help"))
if st.button(tr("intents.retrain"), icon=":material/model_training:"):
    try:
        with st.spinner(tr("intents.retraining")):
            result = app.run(lambda s: curation.retrain_intents(s, principal, app.settings))
    except ReplyDeskError as exc:
        st.error(tr("error.prefix", message=str(exc)))
    else:
        app.reload_components()
        st.success(
            tr("intents.retrained", version=result.version, examples=result.examples, corrections=result.corrections)
        )

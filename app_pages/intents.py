"""Intent examples (leads): review agents' corrections, add examples, retrain the classifier."""

from __future__ import annotations

import functools

import streamlit as st
from sqlalchemy.orm import Session

from engine.db.base import utcnow
from engine.errors import ReplyDeskError
from engine.services import curation, intent_learning
from engine.taxonomy import INTENTS, LANGUAGES
from engine.ui import state
from engine.ui.container import app_services

tr = state.tr
app = app_services()
user = state.require_user(app)
principal = user.principal

st.title(tr("intents.title"))
state.show_flash()

st.markdown(f"#### {tr('intents.unsure')}")
st.caption(tr("intents.unsure_help"))
unsure = app.run(lambda s: intent_learning.least_certain_messages(s, principal, now=utcnow()))
if not unsure:
    st.info(tr("intents.unsure_none"))


def _apply_label(session: Session, *, message_id: int, intent: str) -> object:
    return intent_learning.label_message(session, principal, message_id, intent)


def _label(message: intent_learning.UnsureMessage) -> None:
    with st.container(border=True):
        guessed = " · ".join(
            f"{tr('intent.' + intent)} ({(score or 0):.0%})"
            for intent, score in ((message.intent, message.score), (message.secondary, message.secondary_score))
            if intent
        )
        st.caption(f"#{message.message_id} · {message.language or '—'} · {guessed}")
        st.text(message.text)
        top_two = [i for i in (message.intent, message.secondary) if i in INTENTS]
        cols = st.columns([1, 1, 2, 1])
        for column, intent in zip(cols, top_two, strict=False):
            if column.button(tr(f"intent.{intent}"), key=f"unsure_{message.message_id}_{intent}") and state.attempt(
                app, functools.partial(_apply_label, message_id=message.message_id, intent=intent)
            ):
                state.flash("success", tr("intents.labelled"))
                st.rerun()
        chosen = cols[2].selectbox(
            tr("queue.intent"),
            INTENTS,
            format_func=lambda i: tr(f"intent.{i}"),
            key=f"unsure_pick_{message.message_id}",
            label_visibility="collapsed",
        )
        if cols[3].button(tr("intents.label"), key=f"unsure_label_{message.message_id}") and state.attempt(
            app, lambda s: intent_learning.label_message(s, principal, message.message_id, chosen)
        ):
            state.flash("success", tr("intents.labelled"))
            st.rerun()


for unsure_message in unsure:
    _label(unsure_message)

st.divider()
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
            extra = app.run(lambda s: curation.retraining_examples(s, principal))
            result = curation.train_intent_model(app.settings, extra)  # minutes: no transaction open
            app.run(lambda s: curation.record_retrain(s, principal, result))
    except ReplyDeskError as exc:
        st.error(tr("error.prefix", message=str(exc)))
    else:
        app.reload_components()
        st.success(
            tr("intents.retrained", version=result.version, examples=result.examples, corrections=result.corrections)
        )

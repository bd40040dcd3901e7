"""Knowledge base (leads): search past answers, promote sent replies, edit, retire, add."""

from __future__ import annotations

import streamlit as st

from engine.services import curation
from engine.taxonomy import INTENTS, LANGUAGES
from engine.ui import filters, state
from engine.ui.container import app_services
from engine.ui.format import escape_markdown

tr = state.tr
app = app_services()
user = state.require_user(app)
principal = user.principal

st.title(tr("knowledge.title"))
state.show_flash()


def _changed(key: str) -> None:
    app.reload_components()  # the drafter must retrieve from the new answers
    state.flash("success", tr(key))
    st.rerun()


def _item_editor(item: curation.KnowledgeView) -> None:
    status = "" if item.active else f" · :red[{tr('knowledge.retired')}]"
    title = f"#{item.id} · {tr('intent.' + item.intent)} · {item.language} · {item.source}{status}"
    with st.expander(title), st.form(f"kb_edit_{item.id}"):
        question = st.text_area(tr("knowledge.question"), value=item.question, key=f"kb_q_{item.id}")
        answer = st.text_area(tr("knowledge.answer"), value=item.answer, height=180, key=f"kb_a_{item.id}")
        intent_column, language_column = st.columns(2)
        new_intent = intent_column.selectbox(
            tr("queue.intent"),
            INTENTS,
            index=INTENTS.index(item.intent),
            format_func=lambda i: tr(f"intent.{i}"),
            key=f"kb_i_{item.id}",
        )
        new_language = language_column.selectbox(
            tr("queue.language"), LANGUAGES, index=LANGUAGES.index(item.language), key=f"kb_l_{item.id}"
        )
        save, toggle = st.columns(2)
        if save.form_submit_button(tr("common.save")) and state.attempt(
            app,
            lambda s: curation.update_item(
                s,
                principal,
                item.id,
                question=question,
                answer=answer,
                intent=new_intent,
                language=new_language,
                marketplace=item.marketplace,
            ),
        ):
            _changed("knowledge.saved")
        toggle_key = "knowledge.retire" if item.active else "knowledge.restore"
        if toggle.form_submit_button(tr(toggle_key)) and state.attempt(
            app, lambda s: curation.set_item_active(s, principal, item.id, not item.active)
        ):
            _changed("knowledge.saved")


def _candidate(candidate: curation.PromotionCandidate) -> None:
    with st.container(border=True):
        intent_label = tr(f"intent.{candidate.intent}") if candidate.intent else "—"
        st.caption(escape_markdown(f"#{candidate.draft_id} · {intent_label} · {candidate.language or '—'}"))
        st.text(candidate.question)
        st.text(candidate.answer)
        force = st.checkbox(tr("knowledge.allow_duplicate"), key=f"dup_{candidate.draft_id}")
        if st.button(tr("knowledge.promote"), key=f"promote_{candidate.draft_id}") and state.attempt(
            app, lambda s: curation.promote_reply(s, principal, candidate.draft_id, allow_duplicate=force)
        ):
            _changed("knowledge.promoted")


search, promote, add = st.tabs([tr("knowledge.tab.search"), tr("knowledge.tab.promote"), tr("knowledge.tab.add")])

with search:
    with st.form("knowledge_search"):
        cols = st.columns([3, 1, 1, 1, 1])
        text = cols[0].text_input(tr("knowledge.search"), key="kb_text")
        intent, language = filters.intent_and_language(cols[1], cols[2], key_prefix="kb")
        source = cols[3].selectbox(
            tr("knowledge.source"),
            ["", "seed", "promoted", "manual"],
            key="kb_source",
            format_func=lambda s: s or tr("common.all"),
        )
        retired = cols[4].checkbox(tr("knowledge.include_retired"), key="kb_retired")
        st.form_submit_button(tr("knowledge.search_submit"))
    items = app.run(
        lambda s: curation.search_knowledge(
            s,
            principal,
            text=text,
            intent=intent,
            language=language,
            source=source or None,
            include_retired=retired,
        )
    )
    st.caption(tr("knowledge.found", count=len(items)))
    for item in items:
        _item_editor(item)

with promote:
    st.caption(tr("knowledge.promote_help"))
    candidates = app.run(lambda s: curation.promotion_candidates(s, principal))
    if not candidates:
        st.info(tr("knowledge.no_candidates"))
    for candidate in candidates:
        _candidate(candidate)

with add, st.form("kb_add", clear_on_submit=True):
    question = st.text_area(tr("knowledge.question"), key="kb_new_q")
    answer = st.text_area(tr("knowledge.answer"), height=160, key="kb_new_a")
    intent_column, language_column = st.columns(2)
    new_intent = intent_column.selectbox(
        tr("queue.intent"), INTENTS, format_func=lambda i: tr(f"intent.{i}"), key="kb_new_i"
    )
    new_language = language_column.selectbox(tr("queue.language"), LANGUAGES, key="kb_new_l")
    if st.form_submit_button(tr("knowledge.add")):
        duplicates = app.run(lambda s: curation.near_duplicates(s, answer, intent=new_intent, language=new_language))
        if duplicates:
            ids = ", ".join(f"#{view.id} ({score:.0%})" for view, score in duplicates[:3])
            st.warning(tr("knowledge.duplicates", ids=ids))
        elif state.attempt(
            app,
            lambda s: curation.add_item(
                s, principal, question=question, answer=answer, intent=new_intent, language=new_language
            ),
        ):
            _changed("knowledge.added")

"""Templates (leads): edit with a live preview on sample order data, checked by the compliance gate."""

from __future__ import annotations

import streamlit as st

from engine.services import curation
from engine.ui import filters, state
from engine.ui.container import app_services
from engine.ui.format import escape_markdown, highlighted_markdown

tr = state.tr
app = app_services()
user = state.require_user(app)
principal = user.principal

st.title(tr("templates.title"))
state.show_flash()

intent_column, language_column = st.columns(2)
intent, language = filters.intent_and_language(intent_column, language_column, key_prefix="tpl")
templates = app.run(lambda s: curation.list_templates(s, principal, intent=intent, language=language))
if not templates:
    st.info(tr("templates.none"))
    st.stop()

by_id = {t.id: t for t in templates}
chosen_id = st.selectbox(
    tr("templates.choose"), list(by_id), key="tpl_choice", format_func=lambda i: f"{by_id[i].key} — {by_id[i].name}"
)
template = by_id[chosen_id]

edit, preview = st.columns(2)
with edit:
    name = st.text_input(tr("templates.name"), value=template.name, key=f"tpl_name_{template.id}")
    body = st.text_area(tr("templates.body"), value=template.body, height=360, key=f"tpl_body_{template.id}")
    active = st.checkbox(tr("templates.active"), value=template.active, key=f"tpl_active_{template.id}")
    st.caption(tr("templates.syntax"))

result = curation.preview_template(
    body,
    key=template.key,
    intent=template.intent,
    language=template.language,
    check=lambda text, buyer_language: app.check(text, buyer_language),
    answer=tr("templates.sample_answer"),
)
with preview:
    st.markdown(f"**{tr('templates.preview')}**")
    if result.error:
        st.error(escape_markdown(result.error))
    elif result.text is not None and result.verdict is not None:
        spans = [(v.start, v.end, v.severity) for v in result.verdict.violations]
        with st.container(border=True):
            st.markdown(highlighted_markdown(result.text, spans))
        if result.verdict.allowed:
            st.success(tr("conversation.gate_ok"))
        for violation in result.verdict.violations:
            show = st.error if violation.severity == "block" else st.warning
            show(f"**{tr('rule.' + violation.rule)}** — {escape_markdown(violation.explanation)}")

can_save = result.error is None and result.verdict is not None and result.verdict.allowed
if st.button(tr("common.save"), type="primary", disabled=not can_save, key="tpl_save") and state.attempt(
    app, lambda s: curation.save_template(s, principal, template.id, body=body, name=name, active=active)
):
    app.reload_components()
    state.flash("success", tr("templates.saved"))
    st.rerun()

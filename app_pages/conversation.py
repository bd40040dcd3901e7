"""One conversation: the thread, the order, the draft with its sources and compliance verdict, and every action.

Buyer and agent text is shown as text (`st.text`) or as escaped markdown; never as HTML.
"""

from __future__ import annotations

import streamlit as st

from engine.compliance import Verdict, reveal
from engine.compliance.rules import RULE_BY_ID
from engine.db.base import utcnow
from engine.errors import ComplianceBlocked, ReplyDeskError
from engine.send import resolve as outbox_decisions
from engine.services import claims
from engine.services import conversations as actions
from engine.services.drafts import regenerate_draft
from engine.services.translation import back_translate, translate_message
from engine.taxonomy import INTENTS
from engine.ui import state
from engine.ui.container import app_services
from engine.ui.format import escape_markdown, highlighted_markdown, sla_markdown
from engine.ui.snapshots import ConversationSnap, DraftSnap, conversation_snapshot
from engine.workflow.permissions import Action, is_allowed
from engine.workflow.sla import sla_state

tr = state.tr
# The conversation this browser released: not claimed again on open until the agent takes it back.
RELEASED = "released_conversation"
app = app_services()
user = state.require_user(app)
principal = user.principal
lang = state.language()

if "id" in st.query_params and str(st.query_params["id"]).isdigit():
    st.session_state[state.CONVERSATION] = int(str(st.query_params["id"]))
selected = st.session_state.get(state.CONVERSATION)
if not isinstance(selected, int):
    st.info(tr("conversation.none"))
    st.page_link("app_pages/queue.py", label=tr("conversation.back"), icon=":material/arrow_back:")
    st.stop()
conversation_id: int = int(selected or 0)

try:
    snap: ConversationSnap = app.run(lambda session: conversation_snapshot(session, principal, conversation_id))
except ReplyDeskError as exc:
    st.error(tr("error.prefix", message=str(exc)))
    st.stop()

st.page_link("app_pages/queue.py", label=tr("conversation.back"), icon=":material/arrow_back:")
st.subheader(escape_markdown(snap.subject or tr("conversation.no_subject")))
state.show_flash()


def _claim_on_open() -> claims.ClaimState:
    at = utcnow()
    if st.session_state.get(RELEASED) == conversation_id:
        return app.run(lambda s: claims.claim_state(s, principal, conversation_id, now=at))
    return app.run(lambda s: claims.claim_on_open(s, principal, conversation_id, now=at))


try:
    claim = _claim_on_open()
except ReplyDeskError as exc:
    st.error(tr("error.prefix", message=str(exc)))
    st.stop()
# Someone else holds it: every action is disabled, so two agents never answer one buyer twice.
locked = claim.taken_by_other
claim_row = st.columns([4, 1])
if locked:
    holder = escape_markdown(claim.holder or "")
    claim_row[0].warning(tr("conversation.claimed_by_other", name=holder, until=claim.until))
    if (
        is_allowed(principal, Action.MANAGE_ROUTING, store_id=snap.store_id)
        and claim_row[1].button(tr("conversation.release_other", name=claim.holder or ""), key="release_other")
        and state.attempt(app, lambda s: claims.release(s, principal, conversation_id))
    ):
        st.session_state.pop(RELEASED, None)
        state.flash("success", tr("conversation.released"))
        st.rerun()
elif claim.mine:
    claim_row[0].caption(tr("conversation.claimed_by_you", until=claim.until))
    if claim_row[1].button(tr("conversation.release"), key="release", icon=":material/lock_open:") and state.attempt(
        app, lambda s: claims.release(s, principal, conversation_id)
    ):
        st.session_state[RELEASED] = conversation_id
        state.flash("success", tr("conversation.released"))
        st.rerun()
else:
    claim_row[0].info(tr("conversation.not_claimed"))
    if claim_row[1].button(tr("conversation.take"), key="take", icon=":material/lock:"):
        st.session_state.pop(RELEASED, None)
        st.rerun()

now = utcnow()
left = snap.amazon_deadline - now if snap.amazon_deadline else None
facts = st.columns(5)
facts[0].markdown(
    f"**{tr('queue.col.time_left')}**  \n{sla_markdown(sla_state(snap.amazon_deadline, now), left, lang)}"
)
facts[1].markdown(f"**{tr('queue.col.store')}**  \n{escape_markdown(snap.store)} · {snap.marketplace or '—'}")
facts[2].markdown(f"**{tr('queue.col.status')}**  \n{tr('status.' + snap.status)}")
facts[3].markdown(f"**{tr('conversation.language')}**  \n{snap.language or '—'}")
intent_label = tr(f"intent.{snap.intent}") if snap.intent else "—"
score = f" ({snap.intent_score:.0%})" if snap.intent_score is not None else ""
newest_in = next((m for m in reversed(snap.messages) if m.direction == "in" and m.kind == "buyer_message"), None)
flag = f" · :orange[{tr('conversation.intent_flag')}]" if newest_in and newest_in.needs_review else ""
facts[4].markdown(f"**{tr('queue.col.intent')}**  \n{intent_label}{score}{flag}")


def _done(message_key: str) -> None:
    state.flash("success", tr(message_key))
    st.rerun()


thread, side = st.columns([3, 2])

with side:
    st.markdown(f"#### {tr('conversation.order')}")
    with st.container(border=True):
        st.markdown(f"**{tr('conversation.order_id')}:** {escape_markdown(snap.order_id or '—')}")
        st.markdown(f"**ASIN:** {escape_markdown(snap.asin or '—')}")
        if snap.product_title:
            st.text(snap.product_title)
        if snap.buyer_name:
            st.markdown(f"**{tr('conversation.buyer')}:** {escape_markdown(snap.buyer_name)}")
        if snap.order_context:
            for key, value in snap.order_context.items():
                if value and key != "order_id":
                    st.markdown(f"**{escape_markdown(key.replace('_', ' '))}:** {escape_markdown(str(value))}")
            st.caption(tr("conversation.order_connected"))
        elif snap.order_context_status and snap.order_context_status != "not connected":
            st.caption(escape_markdown(snap.order_context_status))
        else:
            st.caption(tr("conversation.order_not_connected"))

    buyer_messages = [m for m in snap.messages if m.direction == "in" and m.kind == "buyer_message"]
    if buyer_messages:
        newest = buyer_messages[-1]
        with st.form("correct_intent"):
            st.markdown(f"#### {tr('conversation.intent_correction')}")
            if newest.needs_review:
                st.warning(tr("conversation.intent_needs_review"))
                if newest.intent and newest.secondary_intent:
                    first = f"{tr('intent.' + newest.intent)} ({(newest.intent_score or 0):.0%})"
                    second = f"{tr('intent.' + newest.secondary_intent)} ({(newest.secondary_score or 0):.0%})"
                    st.caption(tr("conversation.intent_top_two", first=first, second=second))
            chosen = st.selectbox(
                tr("queue.intent"),
                list(INTENTS),
                index=list(INTENTS).index(newest.intent) if newest.intent in INTENTS else 0,
                format_func=lambda i: tr(f"intent.{i}"),
            )
            submitted = st.form_submit_button(tr("conversation.correct"), disabled=locked)
            if (
                submitted
                and chosen != newest.intent
                and state.attempt(app, lambda s: actions.correct_intent(s, principal, newest.id, chosen))
            ):
                _done("conversation.intent_corrected")

    with st.form("assign"):
        st.markdown(f"#### {tr('conversation.assign')}")
        options: list[int | None] = [None, *[agent_id for agent_id, _ in snap.agents]]
        names = dict(snap.agents)
        assignee = st.selectbox(
            tr("queue.assignee"),
            options,
            index=options.index(snap.assignee_id) if snap.assignee_id in options else 0,
            format_func=lambda a: tr("conversation.unassigned") if a is None else names[a],
        )
        if st.form_submit_button(tr("conversation.assign_submit"), disabled=locked) and state.attempt(
            app, lambda s: actions.assign(s, principal, snap.id, assignee)
        ):
            _done("conversation.assigned")

    with st.form("tags"):
        st.markdown(f"#### {tr('conversation.tags')}")
        tags = st.multiselect(
            tr("conversation.tags"),
            sorted({*snap.known_tags, *snap.tags}),
            default=snap.tags,
            accept_new_options=True,
            label_visibility="collapsed",
            placeholder=tr("conversation.tags_placeholder"),
            key="tags_edit",
        )
        if st.form_submit_button(tr("conversation.save_tags"), disabled=locked) and state.attempt(
            app, lambda s: actions.set_tags(s, principal, snap.id, tags)
        ):
            _done("conversation.tags_saved")

    with st.form("note", clear_on_submit=True):
        st.markdown(f"#### {tr('conversation.notes')}")
        for author, at, text in snap.notes:
            st.caption(f"{escape_markdown(author)} · {at:%Y-%m-%d %H:%M} UTC")
            st.text(text)
        note = st.text_area(tr("conversation.note"), key="note_text")
        if st.form_submit_button(tr("conversation.add_note"), disabled=locked) and state.attempt(
            app, lambda s: actions.add_note(s, principal, snap.id, note)
        ):
            _done("conversation.note_added")


def _translation(message_id: int, body: str) -> None:
    """The buyer's message in the agent's language, on request (translating costs an LLM call)."""
    if not st.toggle(tr("conversation.translate"), key=f"translate_{message_id}"):
        return
    translator = app.translator
    if translator is None:
        st.info(tr("conversation.llm_needed"))
        return
    try:
        result = app.run(lambda s: translate_message(s, principal, message_id, translator, target=lang))
    except ReplyDeskError as exc:
        st.error(tr("error.prefix", message=str(exc)))
        return
    st.caption(tr("conversation.machine_translation", model=result.model or "—"))
    st.text(result.text)


def _back_translation(text: str) -> None:
    """What the reply says, in the agent's language: the reply itself stays in the buyer's."""
    if not snap.language or snap.language == lang or not text.strip():
        return
    if not st.toggle(tr("conversation.back_translate"), key=f"back_translate_{snap.id}"):
        return
    translator = app.translator
    if translator is None:
        st.info(tr("conversation.llm_needed"))
        return
    known = {"buyer_name": snap.buyer_name} if snap.buyer_name else None
    try:
        result = back_translate(
            principal, text, translator, source=snap.language, target=lang, store_id=snap.store_id, known=known
        )
    except ReplyDeskError as exc:
        st.error(tr("error.prefix", message=str(exc)))
        return
    st.caption(tr("conversation.machine_translation", model=result.model or "—"))
    st.text(result.text)


def _unknown_reply(item_id: int) -> None:
    """A reply that may or may not have gone out: only an agent decides, and "send again" passes the gate again."""
    st.warning(tr("conversation.outbox_unknown", id=item_id), icon=":material/help:")
    choice = st.columns(2)
    if choice[0].button(
        tr("conversation.outbox_mark_sent"), key=f"outbox_sent_{item_id}", icon=":material/done_all:", disabled=locked
    ) and state.attempt(app, lambda s: outbox_decisions.mark_sent_by_hand(s, principal, item_id)):
        _done("conversation.outbox_marked_sent")
    if choice[1].button(
        tr("conversation.outbox_send_again"), key=f"outbox_again_{item_id}", icon=":material/send:", disabled=locked
    ) and state.attempt(app, lambda s: outbox_decisions.send_again(s, principal, item_id)):
        _done("conversation.outbox_sent_again")


with thread:
    st.markdown(f"#### {tr('conversation.thread')}")
    for message in snap.messages:
        incoming = message.direction == "in"
        with st.container(border=True):
            who = tr("conversation.buyer") if incoming else tr("conversation.us")
            details = [f"{message.received_at:%Y-%m-%d %H:%M} UTC", tr(f"kind.{message.kind}")]
            if message.language:
                details.append(message.language)
            if message.intent:
                details.append(f"{tr('intent.' + message.intent)} ({(message.intent_score or 0):.0%})")
            st.caption(
                f"{':material/call_received:' if incoming else ':material/call_made:'} **{who}** · "
                + escape_markdown(" · ".join(details))
            )
            if message.suspicious:
                st.warning(tr("conversation.suspicious"))
            st.text(message.body)
            if incoming and message.language and message.language != lang and message.body.strip():
                _translation(message.id, message.body)
    for item in snap.outbox:
        st.caption(tr("conversation.outbox", id=item.id, state=tr(f"outbox.{item.state}"), attempts=item.attempts))
        if item.state == "unknown":
            _unknown_reply(item.id)
        if item.last_error:
            st.text(item.last_error)


def _violations(verdict: Verdict) -> None:
    for violation in verdict.violations:
        title = tr(f"rule.{violation.rule}") if violation.rule in RULE_BY_ID else violation.rule
        show = st.error if violation.severity == "block" else st.warning
        show(
            f"**{title}** ({violation.rule}) — “{escape_markdown(reveal(violation.text)[0])}”: "
            f"{escape_markdown(violation.explanation)}"
        )


def _draft_panel(draft: DraftSnap) -> None:
    st.markdown(f"#### {tr('conversation.draft')}")
    meta = [tr("conversation.drafter", drafter=draft.drafter)]
    if draft.model:
        meta.append(draft.model)
    st.caption(escape_markdown(" · ".join(meta)))
    if draft.note:
        st.caption(escape_markdown(draft.note))
    with st.expander(tr("conversation.sources", count=len(snap.sources) + (1 if draft.template_id else 0))):
        if draft.template_id:
            st.markdown(f"**{tr('conversation.template')}:** `{draft.template_id}`")
        for source in snap.sources:
            st.markdown(f"**#{source.id}** · {tr('intent.' + source.intent)} · {source.language}")
            st.text(source.question)
            st.text(source.answer)
        if not draft.template_id and not snap.sources:
            st.caption(tr("conversation.no_sources"))
    if draft.action == "no_response_needed":
        st.info(tr("conversation.drafter_suggests_nrn"))

    key = f"reply_{draft.id}"
    text = st.text_area(tr("conversation.reply"), value=draft.text, height=260, key=key)
    edited = text.strip() != draft.text.strip()
    _back_translation(text)
    verdict = app.check(text, snap.language, snap.allow_list) if text.strip() else None
    if verdict is not None:
        # what the gate read, invisible characters shown as ⟨ZWSP⟩ markers, violations highlighted
        shown, positions = reveal(text)
        spans = [(positions[v.start], positions[v.end], v.severity) for v in verdict.violations]
        if verdict.violations:
            st.markdown(f"**{tr('conversation.checked_text')}**")
            with st.container(border=True):
                st.markdown(highlighted_markdown(shown, spans))
        if verdict.allowed:
            st.success(tr("conversation.gate_ok") if not verdict.violations else tr("conversation.gate_warn"))
        else:
            st.error(tr("conversation.gate_blocked"))
        _violations(verdict)
    blocked = verdict is None or not verdict.allowed or locked
    label = tr("conversation.send_edited") if edited else tr("conversation.approve_send")
    if st.button(label, type="primary", disabled=blocked, key="send", icon=":material/send:"):
        final = text if edited or draft.action != "reply" else None
        try:
            app.run(
                lambda s: actions.approve_draft(
                    s,
                    principal,
                    draft.id,
                    final_text=final,
                    checker=lambda body, buyer_language, allow: app.check(body, buyer_language, allow),
                )
            )
        except ComplianceBlocked as exc:
            st.error(tr("error.prefix", message=str(exc)))
        except ReplyDeskError as exc:
            st.error(tr("error.prefix", message=str(exc)))
        else:
            _done("conversation.sent")

    with st.form("reject", clear_on_submit=True):
        reason = st.text_input(tr("conversation.reject_reason"), key="reject_reason")
        if st.form_submit_button(tr("conversation.reject"), disabled=locked) and state.attempt(
            app, lambda s: actions.reject_draft(s, principal, draft.id, reason)
        ):
            _done("conversation.rejected")


with thread:
    if snap.current is not None:
        _draft_panel(snap.current)
    else:
        st.info(tr("conversation.no_draft"))

    st.markdown(f"#### {tr('conversation.actions')}")
    buttons = st.columns(4)
    regenerate = buttons[0].button(tr("conversation.regenerate"), icon=":material/refresh:", disabled=locked)
    if regenerate and state.attempt_steps(lambda: regenerate_draft(app.db, principal, app.components(), snap.id)):
        _done("conversation.regenerated")
    if buttons[1].button(
        tr("conversation.no_response_needed"), icon=":material/done:", disabled=locked
    ) and state.attempt(app, lambda s: actions.mark_no_response_needed(s, principal, snap.id)):
        _done("conversation.marked_nrn")
    if snap.status == "hold":
        if buttons[2].button(
            tr("conversation.reopen"), icon=":material/play_arrow:", disabled=locked
        ) and state.attempt(app, lambda s: actions.reopen(s, principal, snap.id)):
            _done("conversation.reopened")
    elif buttons[2].button(tr("conversation.hold"), icon=":material/pause:", disabled=locked) and state.attempt(
        app, lambda s: actions.hold(s, principal, snap.id)
    ):
        _done("conversation.held")
    if buttons[3].button(tr("conversation.close"), icon=":material/archive:", disabled=locked) and state.attempt(
        app, lambda s: actions.close(s, principal, snap.id)
    ):
        _done("conversation.closed")

    history = [d for d in snap.drafts if d.status != "pending"]
    if history:
        with st.expander(tr("conversation.history", count=len(history))):
            for old in reversed(history):
                st.caption(f"#{old.id} · {tr('draft.' + old.status)} · {escape_markdown(old.drafter)}")
                if old.reject_reason:
                    st.text(tr("conversation.reason") + ": " + old.reject_reason)
                st.text(old.final_text or old.text)

"""The demo's thirty days of history (planned by `engine.demo.plan`) written as live work writes it, so the
statistics, draft quality and health pages show real figures on a first run.

Each row gets the fields the live services record: the compliance verdict of every draft and sent text (the
gate itself runs; a sent text it blocks is an error in the history file), `edit_distance` of each sent draft
(`sent_edit_distance`, as `enqueue_reply` does), sent outbox items and outgoing messages (as `mark_sent`
does), audit events for approvals, rejections, "no response needed", closing and tags, dated when they
happened, and finally `answered_at` / `cleared_at` from `record_answers`. Rows are written in a few batches,
not one flush per row: the whole history takes a second or two. No model runs: intents and languages are the
ones the file states, with plausible scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from engine.compliance import Verdict, check_outgoing, gated_subject
from engine.db.models import (
    Agent,
    AuditEvent,
    Conversation,
    ConversationStatus,
    Draft,
    DraftStatus,
    Message,
    OutboxItem,
    OutboxState,
    Store,
)
from engine.demo.plan import (
    HISTORY_DAYS,
    HISTORY_FILE,
    HistoryEntry,
    PlannedConversation,
    PlannedExchange,
    TeamMember,
    plan_history,
)
from engine.errors import InputError
from engine.send.outbox import reply_message_id, reply_subject
from engine.services.stats_record import NO_RESPONSE_NEEDED_ACTION, record_answers, sent_edit_distance
from engine.taxonomy import MARKETPLACES

__all__ = ["DRAFTER", "SOURCE", "HistorySummary", "load_history"]

SOURCE = "demo-history"  # Message.source and the prefix of thread and dedupe keys
DRAFTER = "default"  # the template drafter: the demo runs without an LLM


@dataclass(frozen=True)
class HistorySummary:
    conversations: int
    replies: int
    edited: int
    rejected: int
    blocked: int
    no_response_needed: int

    def line(self) -> str:
        return (
            f"demo history: {self.conversations} conversations over {HISTORY_DAYS} days, {self.replies} replies sent "
            f"({self.edited} edited), {self.rejected} drafts rejected, {self.blocked} blocked by the compliance "
            f"check, {self.no_response_needed} marked no response needed"
        )


@dataclass
class _ExchangeRows:
    plan: PlannedExchange
    message: Message
    draft: Draft | None = None  # the one sent, or the "no response needed" proposal
    rejected: Draft | None = None
    item: OutboxItem | None = None


@dataclass
class _Rows:
    plan: PlannedConversation
    store: Store
    conversation: Conversation
    exchanges: list[_ExchangeRows]


def load_history(session: Session, entries: Sequence[HistoryEntry], *, now: datetime) -> HistorySummary:
    """Write the history planned for the stores in the database (by their marketplaces) and the active agents;
    entries of marketplaces no store sells in are left out. The caller owns the transaction."""
    stores: dict[str, Store] = {}
    for store in session.scalars(select(Store).order_by(Store.id)):
        for code in store.marketplaces or []:
            stores.setdefault(code, store)
    agents = session.scalars(
        select(Agent).options(selectinload(Agent.stores)).where(Agent.active.is_(True)).order_by(Agent.id)
    )
    team = [TeamMember(a.id, a.role, tuple(a.languages or ()), frozenset(s.id for s in a.stores)) for a in agents]
    plans = plan_history(entries, {code: store.id for code, store in stores.items()}, team, now=now)
    by_id = {store.id: store for store in stores.values()}
    rows = [_conversation(plan, by_id[plan.store_id]) for plan in plans]
    for row in rows:
        session.add(row.conversation)
    session.flush()  # conversation and message ids, for drafts and audit events
    for row in rows:
        for exchange in row.exchanges:
            _drafts(session, row, exchange)
    session.flush()  # draft ids, for the replies' Message-IDs
    for row in rows:
        for exchange in row.exchanges:
            _send(session, row, exchange)
    session.flush()  # outbox ids, for the audit trail
    for row in rows:
        _audit_trail(session, row)
    session.flush()
    record_answers(session, [row.conversation.id for row in rows])
    replies = [reply for plan in plans for reply in plan.replies]
    return HistorySummary(
        conversations=len(rows),
        replies=len(replies),
        edited=sum(1 for reply in replies if reply.final.strip() != reply.drafted.strip()),
        rejected=sum(1 for reply in replies if reply.rejected),
        blocked=sum(1 for reply in replies if reply.blocked),
        no_response_needed=sum(1 for plan in plans for exchange in plan.exchanges if exchange.cleared_at),
    )


def _buyer_message(
    conversation: Conversation, store: Store, key: str, exchange: PlannedExchange, order_id: str | None
) -> Message:
    entry, classified = exchange.entry, exchange.classified
    return Message(
        store_id=store.id,
        conversation=conversation,
        direction="in",
        kind="buyer_message",
        dedupe_key=f"{SOURCE}:{key}",
        message_id=f"<{SOURCE}.{key.replace(':', '.')}@{MARKETPLACES[entry.marketplace].relay}>",
        subject=entry.subject,
        from_address=conversation.buyer_address,
        to_address=store.sender_address,
        body=entry.buyer.replace("{order}", order_id or ""),
        received_at=exchange.received,
        source=SOURCE,
        attachments=[],
        flags=[],
        language=entry.language,
        language_score=round(min(0.99, classified.score + 0.05), 3),
        intent=entry.intent,
        intent_score=classified.score,
        intent_needs_review=classified.score < 0.65,
        intent_scores=classified.scores,
        intent_secondary=classified.runner_up,
        processed_at=exchange.received + timedelta(minutes=1),
        created_at=exchange.received,
    )


def _conversation(plan: PlannedConversation, store: Store) -> _Rows:
    last = plan.exchanges[-1]
    if plan.closed_at is not None:
        status = ConversationStatus.CLOSED
    elif last.reply is not None:
        status = ConversationStatus.WAITING
    else:
        status = ConversationStatus.NO_RESPONSE_NEEDED
    moments = [
        moment for e in plan.exchanges for moment in (e.received, e.reply.sent_at if e.reply else None) if moment
    ]
    conversation = Conversation(
        store_id=store.id,
        thread_key=f"{SOURCE}:{plan.number}",
        marketplace=plan.entry.marketplace,
        buyer_address=plan.buyer_address,
        order_id=plan.order_id,
        subject=plan.entry.subject,
        status=status,
        language=last.entry.language,  # as the pipeline leaves it: the newest buyer message's
        intent=last.entry.intent,
        intent_score=last.classified.score,
        last_message_at=max(moments),
        assignee_id=plan.agent_id,
        tags=list(plan.tags),
        created_at=plan.received,
    )
    exchanges = []
    for position, exchange in enumerate(plan.exchanges, start=1):
        message = _buyer_message(conversation, store, f"{plan.number}:{position}", exchange, plan.order_id)
        if position > 1:
            message.subject = reply_subject(plan.entry.subject)
        exchanges.append(_ExchangeRows(exchange, message))
    return _Rows(plan, store, conversation, exchanges)


def _verdict(text: str, entry: HistoryEntry, store: Store) -> Verdict:
    return check_outgoing(text, buyer_language=entry.language, allow_list=list(store.allow_list or ()))


def _draft(row: _Rows, exchange: _ExchangeRows, text: str, at: datetime, status: str) -> Draft:
    entry = exchange.plan.entry
    verdict = _verdict(text, entry, row.store) if text else None
    return Draft(
        conversation=row.conversation,
        message_id=exchange.message.id,
        status=status,
        action="reply" if text else "no_response_needed",
        text=text,
        language=entry.language,
        intent=entry.intent,
        drafter=DRAFTER,
        template_id=entry.template if text else None,
        sources=[{"kind": "template", "id": entry.template}] if text and entry.template else [],
        allowed=verdict.allowed if verdict else True,
        verdict=verdict.to_dict() if verdict else {"allowed": True, "violations": []},
        created_at=at + timedelta(minutes=1),
    )


def _drafts(session: Session, row: _Rows, exchange: _ExchangeRows) -> None:
    reply, received = exchange.plan.reply, exchange.plan.received
    if reply is None:  # the buyer only said thanks: the drafter proposed no reply and an agent agreed
        exchange.draft = _draft(row, exchange, "", received, DraftStatus.SUPERSEDED)
        session.add(exchange.draft)
        return
    if reply.rejected is not None:
        text, reason, at = reply.rejected
        rejected = _draft(row, exchange, text, received, DraftStatus.REJECTED)
        rejected.reject_reason, rejected.decided_by_id, rejected.decided_at = reason, row.plan.agent_id, at
        exchange.rejected = rejected
        session.add(rejected)
    exchange.draft = _draft(
        row, exchange, reply.drafted, reply.rejected[2] if reply.rejected else received, DraftStatus.PENDING
    )
    session.add(exchange.draft)


def _send(session: Session, row: _Rows, exchange: _ExchangeRows) -> None:
    """The reply approved, queued and sent: what `approve_draft`, `enqueue_reply` and `mark_sent` record."""
    reply, draft, store, entry = exchange.plan.reply, exchange.draft, row.store, exchange.plan.entry
    if reply is None or draft is None:
        return
    verdict = _verdict(reply.final, entry, store)
    if not verdict.allowed:  # never send what the gate blocks, not even in a demo
        raise InputError(
            f"The compliance check blocks a reply of knowledge/demo/{HISTORY_FILE} ({entry.subject!r}): "
            f"{', '.join(v.rule for v in verdict.violations)}. Fix that line."
        )
    sender = store.sender_address or f"support@{MARKETPLACES[entry.marketplace].domain}"
    answered = exchange.message
    item = OutboxItem(
        draft_id=draft.id,
        conversation_id=row.conversation.id,
        store_id=store.id,
        state=OutboxState.SENT,
        message_id=reply_message_id(draft.id, reply.final, sender),
        from_address=sender,
        to_address=row.conversation.buyer_address,
        subject=gated_subject(reply_subject(answered.subject), allow_list=list(store.allow_list or ())),
        body=reply.final,
        in_reply_to=answered.message_id,
        references=[m.message_id for m in row.conversation.messages if m.message_id][-10:],
        attempts=1,
        sent_at=reply.sent_at,
        created_at=reply.decided_at,
        updated_at=reply.sent_at,
    )
    exchange.item = item
    session.add(item)
    draft.status, draft.final_text = DraftStatus.SENT, reply.final
    draft.decided_by_id, draft.decided_at = row.plan.agent_id, reply.decided_at
    draft.edit_distance = sent_edit_distance(draft.text, reply.final)
    draft.allowed, draft.verdict = verdict.allowed, verdict.to_dict()  # the sent text's, as `approve_draft` keeps
    session.add(
        Message(
            store_id=store.id,
            conversation=row.conversation,
            direction="out",
            kind="reply",
            dedupe_key=f"mid:{item.message_id}",
            message_id=item.message_id,
            subject=item.subject,
            from_address=sender,
            to_address=item.to_address,
            body=reply.final,
            received_at=reply.sent_at,
            source="reply",
            processed_at=reply.sent_at,
            attachments=[],
            created_at=reply.sent_at,
        )
    )


def _audit_trail(session: Session, row: _Rows) -> None:
    plan, conversation, agent = row.plan, row.conversation, row.plan.agent_id

    def event(
        action: str, entity: str, entity_id: int, at: datetime, after: dict[str, object], **before: object
    ) -> None:
        session.add(
            AuditEvent(
                at=at,
                actor_id=agent,
                action=action,
                entity=entity,
                entity_id=entity_id,
                before=before or None,
                after=after,
            )
        )

    for exchange in row.exchanges:
        rejected, draft, item, reply = exchange.rejected, exchange.draft, exchange.item, exchange.plan.reply
        if rejected is not None and rejected.decided_at is not None:
            event("draft.reject", "draft", rejected.id, rejected.decided_at, {"reason": rejected.reject_reason})
        if reply is not None and draft is not None and item is not None:
            edited = bool(draft.edit_distance)
            approved = {"status": DraftStatus.EDITED if edited else DraftStatus.APPROVED, "edited": edited}
            event("draft.approve", "draft", draft.id, reply.decided_at, {**approved, "outbox_id": item.id},
                  status=DraftStatus.PENDING)  # fmt: skip
            session.add(
                AuditEvent(
                    at=reply.sent_at,
                    action="outbox.sent",
                    entity="outbox_item",
                    entity_id=item.id,
                    before={"state": OutboxState.APPROVED},
                    after={"state": OutboxState.SENT, "how": "smtp"},
                )
            )
        if exchange.plan.cleared_at is not None:
            event(NO_RESPONSE_NEEDED_ACTION, "conversation", conversation.id, exchange.plan.cleared_at,
                  {"status": ConversationStatus.NO_RESPONSE_NEEDED}, status=ConversationStatus.OPEN)  # fmt: skip
    if plan.closed_at is not None:
        event("conversation.close", "conversation", conversation.id, plan.closed_at,
              {"status": ConversationStatus.CLOSED}, status=ConversationStatus.WAITING)  # fmt: skip
    if plan.tags:
        event("conversation.tags", "conversation", conversation.id, plan.handled_at, {"tags": list(plan.tags)}, tags=[])

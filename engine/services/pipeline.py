"""The drafting pipeline for new buyer messages: language → intent → retrieval → draft → compliance → draft row."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.amazon.client import order_context_or_none
from engine.components import Components
from engine.db.base import utcnow
from engine.db.models import Conversation, Draft, DraftStatus, Message
from engine.db.session import Database
from engine.drafting.protocols import DraftRequest, OrderContext
from engine.mail import MailKind
from engine.services.deadlines import refresh_internal_deadline_or_warn
from engine.services.routing import DEFAULT_ROUTING_RULES, load_routing_rules, route_new_conversations
from engine.workflow.routing import Assignment, priority_of


@dataclass(frozen=True)
class PipelineResult:
    messages: int
    drafts: int


def pending_messages(session: Session, *, limit: int | None = None) -> list[Message]:
    query = (
        select(Message)
        .where(
            Message.kind == MailKind.BUYER_MESSAGE.value,
            Message.processed_at.is_(None),
            Message.conversation_id.is_not(None),
        )
        .order_by(Message.received_at, Message.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def process_pending(session: Session, components: Components, *, limit: int | None = None) -> PipelineResult:
    """Classify every new buyer message; draft once per conversation, for its newest message."""
    messages = pending_messages(session, limit=limit)
    if not messages:
        return PipelineResult(0, 0)
    analyses = components.analyze_many(
        [m.body for m in messages], [m.conversation.marketplace if m.conversation else None for m in messages]
    )
    newest: dict[int, Message] = {}
    for message, analysis in zip(messages, analyses, strict=True):
        message.language, message.language_score = analysis.language.language, analysis.language.score
        message.intent, message.intent_score = analysis.intent.intent, analysis.intent.score
        message.intent_needs_review = analysis.intent.needs_review
        message.processed_at = utcnow()
        assert message.conversation_id is not None
        newest[message.conversation_id] = message
    drafts = 0
    for message in newest.values():
        conversation = message.conversation
        assert conversation is not None
        conversation.language, conversation.intent = message.language, message.intent
        conversation.intent_score = message.intent_score
        conversation.priority = priority_of(message.intent or "other", DEFAULT_ROUTING_RULES)
        draft_reply(session, components, conversation, message)
        refresh_internal_deadline_or_warn(conversation, conversation.store, now=utcnow())
        drafts += 1
    session.flush()
    return PipelineResult(len(messages), drafts)


def process_and_route(
    db: Database, components: Components, knowledge_dir: Path, *, batch: int = 200
) -> tuple[PipelineResult, list[Assignment]]:
    """Every pending buyer message (one transaction per batch), then routing of the new conversations."""
    messages = drafts = 0
    while True:
        with db.transaction() as session:
            result = process_pending(session, components, limit=batch)
        messages, drafts = messages + result.messages, drafts + result.drafts
        if result.messages < batch:
            break
    rules = load_routing_rules(knowledge_dir)
    with db.transaction() as session:
        assignments = route_new_conversations(session, now=utcnow(), rules=rules)
    return PipelineResult(messages, drafts), assignments


def draft_reply(session: Session, components: Components, conversation: Conversation, message: Message) -> Draft:
    """A fresh draft for `message`; older pending drafts of the conversation are superseded."""
    for old in conversation.drafts:
        if old.status == DraftStatus.PENDING:
            old.status = DraftStatus.SUPERSEDED
    earlier = tuple(
        (m.direction, m.body)
        for m in conversation.messages
        if m.id != message.id and m.kind in ("buyer_message", "reply")
    )
    context, context_status = order_context_or_none(components.orders, conversation.order_id, conversation.marketplace)
    conversation.order_context = dataclasses.asdict(context) if context else None
    conversation.order_context_status = context_status
    request = DraftRequest(
        text=message.body,
        language=message.language or "en",
        intent=message.intent or "other",
        marketplace=conversation.marketplace,
        buyer_name=conversation.buyer_name,
        product_title=conversation.product_title,
        asin=conversation.asin,
        order=context or OrderContext(order_id=conversation.order_id),
        store_name=conversation.store.name,
        thread=earlier[-6:],
    )
    result, verdict = components.draft(request, allow_list=conversation.store.allow_list)
    sources: list[dict[str, object]] = [{"kind": "knowledge", "id": i} for i in result.source_ids]
    if result.template_id:
        sources.insert(0, {"kind": "template", "id": result.template_id})
    draft = Draft(
        conversation=conversation,
        message_id=message.id,
        status=DraftStatus.PENDING,
        action=result.action,
        text=result.text,
        language=request.language,
        intent=request.intent,
        drafter=result.drafter,
        model=result.model,
        prompt_version=result.prompt_version,
        template_id=result.template_id,
        sources=sources,
        note=result.note,
        allowed=verdict.allowed,
        verdict=verdict.to_dict(),
    )
    session.add(draft)
    return draft

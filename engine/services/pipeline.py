"""The drafting pipeline for new buyer messages: language → intent → retrieval → draft → compliance → draft row."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from engine.amazon.client import order_context_or_none
from engine.components import Components, build_components, intent_model_directory
from engine.db.base import utcnow
from engine.db.models import Conversation, Draft, DraftStatus, KnowledgeItem, Message, TemplateRow
from engine.db.session import Database
from engine.drafting.protocols import DraftRequest, OrderContext
from engine.mail import MailKind
from engine.nlp.intent import CURRENT_FILE
from engine.services.deadlines import refresh_internal_deadline_or_warn
from engine.services.routing import DEFAULT_ROUTING_RULES, current_routing_rules, route_new_conversations
from engine.settings import Settings
from engine.workflow.routing import Assignment, RoutingRules, priority_of

ComponentBuilder = Callable[[Settings, Session], Components]


@dataclass(frozen=True)
class PipelineResult:
    messages: int
    drafts: int


def pending_messages_query() -> Select[Message]:
    return (
        select(Message)
        .where(
            Message.kind == MailKind.BUYER_MESSAGE.value,
            Message.processed_at.is_(None),
            Message.conversation_id.is_not(None),
        )
        .order_by(Message.received_at, Message.id)
    )


def pending_messages(session: Session, *, limit: int | None = None) -> list[Message]:
    query = pending_messages_query()
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def process_pending(
    session: Session,
    components: Components,
    *,
    limit: int | None = None,
    rules: RoutingRules = DEFAULT_ROUTING_RULES,
) -> PipelineResult:
    """Classify every new buyer message; draft once per conversation, for its newest message. `rules` set
    each conversation's priority from its intent."""
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
        conversation.priority = priority_of(message.intent or "other", rules)
        draft_reply(session, components, conversation, message)
        refresh_internal_deadline_or_warn(conversation, conversation.store, now=utcnow())
        drafts += 1
    session.flush()
    return PipelineResult(len(messages), drafts)


def process_and_route(
    db: Database, components: Components, knowledge_dir: Path, *, batch: int = 200
) -> tuple[PipelineResult, list[Assignment]]:
    """Every pending buyer message (one transaction per batch), then routing of the new conversations."""
    with db.transaction() as session:
        rules = current_routing_rules(session, knowledge_dir)
    messages = drafts = 0
    while True:
        with db.transaction() as session:
            result = process_pending(session, components, limit=batch, rules=rules)
        messages, drafts = messages + result.messages, drafts + result.drafts
        if result.messages < batch:
            break
    return PipelineResult(messages, drafts), route_waiting(db, knowledge_dir, rules)


def route_waiting(db: Database, knowledge_dir: Path, rules: RoutingRules | None = None) -> list[Assignment]:
    """Route the open, unassigned conversations (one transaction), by `rules` or the team's current ones."""
    with db.transaction() as session:
        if rules is None:
            rules = current_routing_rules(session, knowledge_dir)
        return route_new_conversations(session, now=utcnow(), rules=rules)


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


def has_pending(session: Session) -> bool:
    return session.scalar(pending_messages_query().with_only_columns(Message.id).limit(1)) is not None


def knowledge_stamp(session: Session, intent_model_dir: Path) -> tuple[object, ...]:
    """What the components were built from, cheaply: past answers, templates and the current intent model.
    A different stamp means a lead changed something and new drafts should use it."""
    answers = session.execute(select(func.count(), func.max(KnowledgeItem.updated_at))).one()
    templates = session.execute(select(func.count(), func.max(TemplateRow.updated_at))).one()
    pointer = intent_model_dir / CURRENT_FILE
    model = pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else None
    return (*answers, *templates, model)


class PipelineWorker:
    """The drafting pipeline as the background worker runs it, after each sync.

    Components are built on the first pending message (an idle worker loads no models) and rebuilt when the
    knowledge they were built from changes, so a lead's template edit, a promoted answer or a retrained
    intent model reaches new drafts without restarting the worker. Routing runs on every pass: an agent who
    comes back or frees capacity gets the conversations left unassigned."""

    def __init__(self, db: Database, settings: Settings, build: ComponentBuilder = build_components) -> None:
        self.db, self.settings, self._build = db, settings, build
        self._components: Components | None = None
        self._stamp: tuple[object, ...] | None = None

    def run_once(self) -> tuple[PipelineResult, list[Assignment]]:
        with self.db.transaction() as session:
            pending = has_pending(session)
            if pending and (self._components is None or self._stamp != self._knowledge_stamp(session)):
                self._components = self._build(self.settings, session)
                self._stamp = self._knowledge_stamp(session)  # after the build: it may train the first model
        if pending:
            assert self._components is not None
            return process_and_route(self.db, self._components, self.settings.knowledge_dir)
        return PipelineResult(0, 0), route_waiting(self.db, self.settings.knowledge_dir)

    def _knowledge_stamp(self, session: Session) -> tuple[object, ...]:
        return knowledge_stamp(session, intent_model_directory(self.settings))

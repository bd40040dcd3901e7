"""The drafting pipeline for new buyer messages: language → intent → retrieval → draft → compliance → draft row."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from engine.amazon.client import order_context_or_none
from engine.compliance import Verdict
from engine.components import Analysis, Components, Knowledge, build_components, intent_model_directory, read_knowledge
from engine.db.base import utcnow
from engine.db.models import Conversation, Draft, DraftStatus, KnowledgeItem, Message, TemplateRow
from engine.db.session import Database
from engine.drafting.protocols import DraftRequest, DraftResult, OrderContext
from engine.integrations.events import emit_draft_event
from engine.mail import MailKind
from engine.nlp.intent import CURRENT_FILE
from engine.services.deadlines import refresh_internal_deadline_or_warn
from engine.services.routing import DEFAULT_ROUTING_RULES, current_routing_rules, route_new_conversations
from engine.settings import Settings
from engine.workflow.routing import Assignment, RoutingRules, priority_of

ComponentBuilder = Callable[[Settings, Knowledge], Components]


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


@dataclass(frozen=True)
class DraftJob:
    """What drafting a reply needs, copied out of the database so that the drafter (an LLM over the network),
    the SP-API order look-up and the gate run with no transaction open."""

    conversation_id: int
    message_id: int
    text: str
    marketplace: str | None
    order_id: str | None
    buyer_name: str | None
    product_title: str | None
    asin: str | None
    store_name: str
    allow_list: tuple[str, ...]
    thread: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DraftOutcome:
    job: DraftJob
    language: str
    intent: str
    result: DraftResult
    verdict: Verdict
    order_context: OrderContext | None
    order_context_status: str


@dataclass(frozen=True)
class _Classified:
    message_id: int
    conversation_id: int
    analysis: Analysis


def draft_job(conversation: Conversation, message: Message) -> DraftJob:
    earlier = tuple(
        (m.direction, m.body)
        for m in conversation.messages
        if m.id != message.id and m.kind in ("buyer_message", "reply")
    )
    return DraftJob(
        conversation_id=conversation.id,
        message_id=message.id,
        text=message.body,
        marketplace=conversation.marketplace,
        order_id=conversation.order_id,
        buyer_name=conversation.buyer_name,
        product_title=conversation.product_title,
        asin=conversation.asin,
        store_name=conversation.store.name,
        allow_list=tuple(conversation.store.allow_list or ()),
        thread=earlier[-6:],
    )


def compute_draft(components: Components, job: DraftJob, *, language: str, intent: str) -> DraftOutcome:
    """Order context, retrieval, the drafter and the gate: slow and networked, so never inside a transaction."""
    context, context_status = order_context_or_none(components.orders, job.order_id, job.marketplace)
    request = DraftRequest(
        text=job.text,
        language=language,
        intent=intent,
        marketplace=job.marketplace,
        buyer_name=job.buyer_name,
        product_title=job.product_title,
        asin=job.asin,
        order=context or OrderContext(order_id=job.order_id),
        store_name=job.store_name,
        thread=job.thread,
    )
    result, verdict = components.draft(request, allow_list=job.allow_list)
    return DraftOutcome(job, language, intent, result, verdict, context, context_status)


def store_draft(session: Session, conversation: Conversation, outcome: DraftOutcome) -> Draft:
    """The draft row for `outcome`; older pending drafts of the conversation are superseded."""
    for old in conversation.drafts:
        if old.status == DraftStatus.PENDING:
            old.status = DraftStatus.SUPERSEDED
    conversation.order_context = dataclasses.asdict(outcome.order_context) if outcome.order_context else None
    conversation.order_context_status = outcome.order_context_status
    result = outcome.result
    sources: list[dict[str, object]] = [{"kind": "knowledge", "id": i} for i in result.source_ids]
    if result.template_id:
        sources.insert(0, {"kind": "template", "id": result.template_id})
    draft = Draft(
        conversation=conversation,
        message_id=outcome.job.message_id,
        status=DraftStatus.PENDING,
        action=result.action,
        text=result.text,
        language=outcome.language,
        intent=outcome.intent,
        drafter=result.drafter,
        model=result.model,
        prompt_version=result.prompt_version,
        template_id=result.template_id,
        sources=sources,
        note=result.note,
        allowed=outcome.verdict.allowed,
        verdict=outcome.verdict.to_dict(),
    )
    session.add(draft)
    emit_draft_event(session, draft)
    return draft


def draft_reply(session: Session, components: Components, conversation: Conversation, message: Message) -> Draft:
    """A fresh draft for `message` in one session (tests and callers that already hold one); the worker and the
    app run the same steps with the drafting outside any transaction."""
    outcome = compute_draft(
        components,
        draft_job(conversation, message),
        language=message.language or "en",
        intent=message.intent or "other",
    )
    return store_draft(session, conversation, outcome)


@dataclass(frozen=True)
class _Batch:
    """Pending buyer messages read in one short transaction: the texts to classify and, per conversation,
    the newest message's drafting inputs."""

    message_ids: list[int]
    texts: list[str]
    marketplaces: list[str | None]
    conversation_ids: list[int]
    jobs: dict[int, DraftJob]  # conversation id -> job for its newest pending message


def _read_batch(session: Session, limit: int | None) -> _Batch:
    messages = pending_messages(session, limit=limit)
    newest: dict[int, Message] = {}
    for message in messages:
        assert message.conversation_id is not None
        newest[message.conversation_id] = message
    return _Batch(
        message_ids=[m.id for m in messages],
        texts=[m.body for m in messages],
        marketplaces=[m.conversation.marketplace if m.conversation else None for m in messages],
        conversation_ids=[m.conversation_id for m in messages if m.conversation_id is not None],
        jobs={cid: draft_job(m.conversation, m) for cid, m in newest.items() if m.conversation is not None},
    )


def _compute_batch(components: Components, batch: _Batch) -> tuple[list[_Classified], list[DraftOutcome]]:
    analyses = components.analyze_many(batch.texts, batch.marketplaces)
    classified = [
        _Classified(mid, cid, analysis)
        for mid, cid, analysis in zip(batch.message_ids, batch.conversation_ids, analyses, strict=True)
    ]
    by_message = {c.message_id: c.analysis for c in classified}
    outcomes = []
    for job in batch.jobs.values():
        analysis = by_message[job.message_id]
        outcomes.append(
            compute_draft(components, job, language=analysis.language.language, intent=analysis.intent.intent)
        )
    return classified, outcomes


def _apply_batch(
    session: Session, classified: list[_Classified], outcomes: list[DraftOutcome], rules: RoutingRules
) -> PipelineResult:
    """Write what was computed, for the messages still unprocessed (another worker may have taken some)."""
    ids = [c.message_id for c in classified]
    locked = {
        m.id: m
        for m in session.scalars(
            select(Message)
            .where(Message.id.in_(ids), Message.processed_at.is_(None))
            .with_for_update(skip_locked=True, of=Message)
        )
    }
    now = utcnow()
    for item in classified:
        message = locked.get(item.message_id)
        if message is None:
            continue
        analysis = item.analysis
        message.language, message.language_score = analysis.language.language, analysis.language.score
        message.intent, message.intent_score = analysis.intent.intent, analysis.intent.score
        message.intent_needs_review = analysis.intent.needs_review
        message.intent_scores = dict(analysis.intent.scores) or None
        message.intent_secondary = analysis.intent.secondary
        message.processed_at = now
    drafts = 0
    for outcome in outcomes:
        message = locked.get(outcome.job.message_id)
        if message is None or message.conversation is None:
            continue
        conversation = message.conversation
        conversation.language, conversation.intent = message.language, message.intent
        conversation.intent_score = message.intent_score
        conversation.priority = priority_of(message.intent or "other", rules)
        store_draft(session, conversation, outcome)
        refresh_internal_deadline_or_warn(conversation, conversation.store, now=now)
        drafts += 1
    session.flush()
    return PipelineResult(len(locked), drafts)


def process_pending(
    session: Session,
    components: Components,
    *,
    limit: int | None = None,
    rules: RoutingRules = DEFAULT_ROUTING_RULES,
) -> PipelineResult:
    """Classify every new buyer message; draft once per conversation, for its newest message. `rules` set
    each conversation's priority from its intent. All in `session` (the worker splits the same steps into a
    read, the model and network work outside any transaction, and a short write: `process_and_route`)."""
    batch = _read_batch(session, limit)
    if not batch.message_ids:
        return PipelineResult(0, 0)
    classified, outcomes = _compute_batch(components, batch)
    return _apply_batch(session, classified, outcomes, rules)


def process_and_route(
    db: Database, components: Components, knowledge_dir: Path, *, batch: int = 200
) -> tuple[PipelineResult, list[Assignment]]:
    """Every pending buyer message, then routing of the new conversations. Per batch: a read transaction, the
    models, LLM and SP-API with no transaction open, then one short write transaction."""
    with db.read() as session:
        rules = current_routing_rules(session, knowledge_dir)
    messages = drafts = 0
    while True:
        with db.read() as session:
            pending = _read_batch(session, batch)
        if not pending.message_ids:
            break
        classified, outcomes = _compute_batch(components, pending)
        with db.transaction() as session:
            result = _apply_batch(session, classified, outcomes, rules)
        messages, drafts = messages + result.messages, drafts + result.drafts
        if len(pending.message_ids) < batch or result.messages == 0:
            break
    return PipelineResult(messages, drafts), route_waiting(db, knowledge_dir, rules)


def route_waiting(db: Database, knowledge_dir: Path, rules: RoutingRules | None = None) -> list[Assignment]:
    """Route the open, unassigned conversations (one transaction), by `rules` or the team's current ones."""
    with db.transaction() as session:
        if rules is None:
            rules = current_routing_rules(session, knowledge_dir)
        return route_new_conversations(session, now=utcnow(), rules=rules)


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
        knowledge = None
        with self.db.read() as session:
            pending = has_pending(session)
            if pending and (self._components is None or self._stamp != self._knowledge_stamp(session)):
                knowledge = read_knowledge(session, self.settings.knowledge_dir)
        if knowledge is not None:  # models load (and may train) with no transaction open
            self._components = self._build(self.settings, knowledge)
            with self.db.read() as session:
                self._stamp = self._knowledge_stamp(session)  # after the build: it may train the first model
        if pending:
            assert self._components is not None
            return process_and_route(self.db, self._components, self.settings.knowledge_dir)
        return PipelineResult(0, 0), route_waiting(self.db, self.settings.knowledge_dir)

    def _knowledge_stamp(self, session: Session) -> tuple[object, ...]:
        return knowledge_stamp(session, intent_model_directory(self.settings))

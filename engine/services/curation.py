"""Curating what the drafter draws on: past answers, templates and intent examples (leads and admins).

- Past answers: search and filter, promote a sent reply (buyer details removed), edit, retire, restore;
  near-duplicates are found before anything is added.
- Templates: edit with a live preview on sample order data, checked by the compliance gate.
- Intent examples: review agents' corrections, add examples, retrain the intent classifier.

Drafts keep using the running index until the app reloads its components (the pages do that after a change).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from engine.compliance import Verdict
from engine.db.models import Conversation, Draft, DraftStatus, IntentExample, KnowledgeItem, Message, TemplateRow
from engine.drafting.pii import mask
from engine.drafting.protocols import DraftRequest, OrderContext
from engine.drafting.templates import Template, render, template_variables
from engine.errors import ConflictError, InputError, TemplateError
from engine.nlp.training_data import Example
from engine.services import audit
from engine.settings import Settings
from engine.taxonomy import INTENTS, LANGUAGES, MARKETPLACES
from engine.workflow.permissions import Action, Principal, require
from engine.workflow.textdiff import normalized_edit_distance

DUPLICATE_SIMILARITY = 0.85  # 1 - normalised edit distance at or above which two answers are near-duplicates
_PLACEHOLDER = re.compile(r"\s*\[\[[A-Z_0-9]+\]\]")


# --- past answers ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnowledgeView:
    id: int
    question: str
    answer: str
    intent: str
    language: str
    marketplace: str | None
    source: str
    active: bool


def _view(item: KnowledgeItem) -> KnowledgeView:
    return KnowledgeView(
        item.id, item.question, item.answer, item.intent, item.language, item.marketplace, item.source, item.active
    )


def _check_labels(intent: str, language: str, marketplace: str | None = None) -> None:
    if intent not in INTENTS:
        raise InputError(f"Unknown intent {intent!r}. Pick one of: {', '.join(INTENTS)}.")
    if language not in LANGUAGES:
        raise InputError(f"Unknown language {language!r}. Pick one of: {', '.join(LANGUAGES)}.")
    if marketplace and marketplace not in MARKETPLACES:
        raise InputError(f"Unknown marketplace {marketplace!r}. Use a code like DE, US or JP.")


def search_knowledge(
    session: Session,
    principal: Principal,
    *,
    text: str = "",
    intent: str | None = None,
    language: str | None = None,
    source: str | None = None,
    include_retired: bool = False,
    limit: int = 100,
) -> list[KnowledgeView]:
    require(principal, Action.EDIT_KNOWLEDGE)
    query = select(KnowledgeItem)
    if text.strip():
        pattern = f"%{text.strip().lower()}%"
        query = query.where(
            or_(func.lower(KnowledgeItem.question).like(pattern), func.lower(KnowledgeItem.answer).like(pattern))
        )
    if intent:
        query = query.where(KnowledgeItem.intent == intent)
    if language:
        query = query.where(KnowledgeItem.language == language)
    if source:
        query = query.where(KnowledgeItem.source == source)
    if not include_retired:
        query = query.where(KnowledgeItem.active.is_(True))
    return [_view(i) for i in session.scalars(query.order_by(KnowledgeItem.id.desc()).limit(limit))]


def knowledge_sources(session: Session, principal: Principal, ids: Sequence[int]) -> list[KnowledgeView]:
    """The past answers a draft drew on, for any agent who may see the queue."""
    require(principal, Action.VIEW_QUEUE)
    items = session.scalars(select(KnowledgeItem).where(KnowledgeItem.id.in_(list(ids) or [-1]))).all()
    by_id = {i.id: _view(i) for i in items}
    return [by_id[i] for i in ids if i in by_id]


def similarity(a: str, b: str) -> float:
    """1 = same text (ignoring case and runs of whitespace), 0 = nothing in common."""
    fold = lambda s: " ".join(s.lower().split())  # noqa: E731
    return 1.0 - normalized_edit_distance(fold(a), fold(b))


def near_duplicates(
    session: Session,
    answer: str,
    *,
    intent: str,
    language: str,
    exclude_id: int | None = None,
    threshold: float = DUPLICATE_SIMILARITY,
) -> list[tuple[KnowledgeView, float]]:
    """Active answers of the same intent and language at least `threshold` similar, most similar first."""
    query = select(KnowledgeItem).where(
        KnowledgeItem.intent == intent, KnowledgeItem.language == language, KnowledgeItem.active.is_(True)
    )
    if exclude_id is not None:
        query = query.where(KnowledgeItem.id != exclude_id)
    found = []
    for item in session.scalars(query):
        # Length alone bounds the similarity: skip pairs that cannot reach the threshold.
        longest = max(len(item.answer), len(answer), 1)
        if abs(len(item.answer) - len(answer)) / longest > 1 - threshold:
            continue
        score = similarity(item.answer, answer)
        if score >= threshold:
            found.append((_view(item), round(score, 3)))
    return sorted(found, key=lambda pair: -pair[1])


def scrub_buyer_details(text: str, *, buyer_name: str | None = None, order_id: str | None = None) -> str:
    """The text without the buyer's name, order id, e-mail addresses, phone numbers and postal addresses."""
    known = {k: v for k, v in (("buyer_name", buyer_name), ("order_id", order_id)) if v}
    masked, _ = mask(text, known)
    if order_id:
        masked = masked.replace(order_id, "")
    lines = [_PLACEHOLDER.sub("", line).rstrip() for line in masked.splitlines()]
    cleaned = "\n".join(re.sub(r"\s+([,.!?;:])", r"\1", line) for line in lines)
    return re.sub(r"\n{3,}", "\n\n", cleaned).strip()


@dataclass(frozen=True)
class PromotionCandidate:
    draft_id: int
    conversation_id: int
    intent: str | None
    language: str | None
    question: str
    answer: str


def promotion_candidates(session: Session, principal: Principal, *, limit: int = 50) -> list[PromotionCandidate]:
    """Recently sent replies not yet in the knowledge base, with the buyer message they answered."""
    require(principal, Action.EDIT_KNOWLEDGE)
    promoted = select(KnowledgeItem.origin_draft_id).where(KnowledgeItem.origin_draft_id.is_not(None))
    rows = session.execute(
        select(Draft, Message.body)
        .join(Message, Message.id == Draft.message_id)
        .where(
            Draft.final_text.is_not(None),
            Draft.status.in_((DraftStatus.APPROVED, DraftStatus.EDITED, DraftStatus.SENT)),
            Draft.id.not_in(promoted),
        )
        .order_by(Draft.decided_at.desc(), Draft.id.desc())
        .limit(limit)
    )
    return [
        PromotionCandidate(d.id, d.conversation_id, d.intent, d.language, question, d.final_text or "")
        for d, question in rows
    ]


def promote_reply(
    session: Session,
    principal: Principal,
    draft_id: int,
    *,
    question: str | None = None,
    allow_duplicate: bool = False,
) -> KnowledgeView:
    """Add a sent reply to the knowledge base, buyer details removed from question and answer."""
    require(principal, Action.EDIT_KNOWLEDGE)
    draft = session.get(Draft, draft_id)
    if draft is None or not draft.final_text:
        raise InputError(f"Draft {draft_id} was never sent; only sent replies can become past answers.")
    conversation = session.get_one(Conversation, draft.conversation_id)
    message = session.get(Message, draft.message_id) if draft.message_id else None
    details = {"buyer_name": conversation.buyer_name, "order_id": conversation.order_id}
    answer = scrub_buyer_details(draft.final_text, **details)
    asked = scrub_buyer_details(question if question is not None else (message.body if message else ""), **details)
    intent, language = draft.intent or "other", draft.language or conversation.language or "en"
    _check_labels(intent, language)
    if not allow_duplicate:
        duplicates = near_duplicates(session, answer, intent=intent, language=language)
        if duplicates:
            ids = ", ".join(f"#{v.id} ({score:.0%})" for v, score in duplicates[:3])
            raise ConflictError(f"The knowledge base already holds a near-identical answer: {ids}. Edit that one.")
    item = KnowledgeItem(
        question=asked,
        answer=answer,
        intent=intent,
        language=language,
        marketplace=conversation.marketplace,
        store_id=None,
        source="promoted",
        active=True,
        origin_draft_id=draft.id,
        created_by_id=principal.agent_id,
    )
    session.add(item)
    session.flush()
    audit.record(
        session,
        "knowledge.promote",
        "knowledge_item",
        item.id,
        actor_id=principal.agent_id,
        after={"draft_id": draft.id},
    )
    return _view(item)


def add_item(
    session: Session,
    principal: Principal,
    *,
    question: str,
    answer: str,
    intent: str,
    language: str,
    marketplace: str | None = None,
) -> KnowledgeView:
    require(principal, Action.EDIT_KNOWLEDGE)
    _check_labels(intent, language, marketplace)
    if not question.strip() or not answer.strip():
        raise InputError("A past answer needs both the question and the answer.")
    item = KnowledgeItem(
        question=question.strip(),
        answer=answer.strip(),
        intent=intent,
        language=language,
        marketplace=marketplace or None,
        source="manual",
        created_by_id=principal.agent_id,
    )
    session.add(item)
    session.flush()
    audit.record(session, "knowledge.add", "knowledge_item", item.id, actor_id=principal.agent_id)
    return _view(item)


def update_item(
    session: Session,
    principal: Principal,
    item_id: int,
    *,
    question: str,
    answer: str,
    intent: str,
    language: str,
    marketplace: str | None = None,
) -> KnowledgeView:
    require(principal, Action.EDIT_KNOWLEDGE)
    _check_labels(intent, language, marketplace)
    item = session.get(KnowledgeItem, item_id)
    if item is None:
        raise InputError(f"Past answer {item_id} does not exist. Refresh the page.")
    if not question.strip() or not answer.strip():
        raise InputError("A past answer needs both the question and the answer.")
    before = {"question": item.question, "answer": item.answer, "intent": item.intent, "language": item.language}
    item.question, item.answer = question.strip(), answer.strip()
    item.intent, item.language, item.marketplace = intent, language, marketplace or None
    audit.record(session, "knowledge.edit", "knowledge_item", item.id, actor_id=principal.agent_id, before=before)
    return _view(item)


def set_item_active(session: Session, principal: Principal, item_id: int, active: bool) -> KnowledgeView:
    """Retire (False) or restore (True) a past answer; retired ones are never retrieved."""
    require(principal, Action.EDIT_KNOWLEDGE)
    item = session.get(KnowledgeItem, item_id)
    if item is None:
        raise InputError(f"Past answer {item_id} does not exist. Refresh the page.")
    item.active = active
    action = "knowledge.restore" if active else "knowledge.retire"
    audit.record(session, action, "knowledge_item", item.id, actor_id=principal.agent_id)
    return _view(item)


# --- templates ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateView:
    id: int
    key: str
    intent: str
    language: str
    name: str
    body: str
    active: bool


def list_templates(
    session: Session, principal: Principal, *, intent: str | None = None, language: str | None = None
) -> list[TemplateView]:
    require(principal, Action.EDIT_TEMPLATES)
    query = select(TemplateRow).order_by(TemplateRow.intent, TemplateRow.language, TemplateRow.key)
    if intent:
        query = query.where(TemplateRow.intent == intent)
    if language:
        query = query.where(TemplateRow.language == language)
    return [TemplateView(r.id, r.key, r.intent, r.language, r.name, r.body, r.active) for r in session.scalars(query)]


def sample_request(language: str) -> DraftRequest:
    """Made-up order data for previews, in the formats of a marketplace that speaks `language`."""
    marketplace = next((m.code for m in MARKETPLACES.values() if m.default_language == language), "US")
    return DraftRequest(
        text="",
        language=language,
        intent="order_status",
        marketplace=marketplace,
        buyer_name="Alex Sample",
        product_title="Stainless Steel Water Bottle 750 ml",
        asin="B000SAMPLE",
        store_name="Sample Store",
        order=OrderContext(
            order_id="302-1234567-1234567",
            status="Shipped",
            fulfillment_channel="MFN",
            carrier="DHL",
            tracking_number="00340434161234567890",
            ship_date="2024-05-02",
            delivery_date="2024-05-06",
            order_total="24.99",
        ),
    )


@dataclass(frozen=True)
class TemplatePreview:
    text: str | None  # None when the template does not render
    error: str | None
    verdict: Verdict | None


Check = Callable[[str, str | None], Verdict]  # (text, buyer language) -> verdict


def preview_template(
    body: str, *, key: str, intent: str, language: str, check: Check, answer: str | None = None
) -> TemplatePreview:
    """Render `body` on sample order data and run the gate on the result (pure but for `check`)."""
    try:
        template = Template(id=key, intent=intent, language=language, name=key, body=body)
        variables: dict[str, str | None] = dict(template_variables(sample_request(language)))
        variables["answer"] = answer
        text = render(template, variables)
    except TemplateError as exc:
        return TemplatePreview(None, str(exc), None)
    return TemplatePreview(text, None, check(text, language))


def save_template(
    session: Session, principal: Principal, template_id: int, *, body: str, name: str, active: bool
) -> TemplateView:
    """Store an edited template; a template that does not parse is refused with the parser's reason."""
    require(principal, Action.EDIT_TEMPLATES)
    row = session.get(TemplateRow, template_id)
    if row is None:
        raise InputError(f"Template {template_id} does not exist. Refresh the page.")
    Template(id=row.key, intent=row.intent, language=row.language, name=name or row.key, body=body)  # validates
    before = {"body": row.body, "name": row.name, "active": row.active}
    row.body, row.name, row.active, row.updated_by_id = body, name or row.key, active, principal.agent_id
    audit.record(session, "template.edit", "template", row.id, actor_id=principal.agent_id, before=before)
    return TemplateView(row.id, row.key, row.intent, row.language, row.name, row.body, row.active)


# --- intent examples ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleView:
    id: int
    text: str
    intent: str
    language: str | None
    source: str
    status: str
    original_intent: str | None  # what the classifier said, for corrections


def list_examples(
    session: Session, principal: Principal, *, status: str | None = "pending", limit: int = 100
) -> list[ExampleView]:
    require(principal, Action.EDIT_INTENT_EXAMPLES)
    query = select(IntentExample).order_by(IntentExample.id.desc()).limit(limit)
    if status:
        query = query.where(IntentExample.status == status)
    examples = session.scalars(query).all()
    return [ExampleView(e.id, e.text, e.intent, e.language, e.source, e.status, None) for e in examples]


def review_example(
    session: Session, principal: Principal, example_id: int, *, accept: bool, intent: str | None = None
) -> ExampleView:
    """Accept (optionally relabelled) or reject an example; accepted ones train the next model."""
    require(principal, Action.EDIT_INTENT_EXAMPLES)
    example = session.get(IntentExample, example_id)
    if example is None:
        raise InputError(f"Intent example {example_id} does not exist. Refresh the page.")
    if intent is not None:
        if intent not in INTENTS:
            raise InputError(f"Unknown intent {intent!r}. Pick one of: {', '.join(INTENTS)}.")
        example.intent = intent
    example.status = "accepted" if accept else "rejected"
    audit.record(
        session,
        "intent_example.review",
        "intent_example",
        example.id,
        actor_id=principal.agent_id,
        after={"status": example.status, "intent": example.intent},
    )
    return ExampleView(example.id, example.text, example.intent, example.language, example.source, example.status, None)


def add_example(session: Session, principal: Principal, *, text: str, intent: str, language: str | None) -> ExampleView:
    require(principal, Action.EDIT_INTENT_EXAMPLES)
    if intent not in INTENTS:
        raise InputError(f"Unknown intent {intent!r}. Pick one of: {', '.join(INTENTS)}.")
    if not text.strip():
        raise InputError("An intent example needs a text.")
    example = IntentExample(
        text=text.strip(),
        intent=intent,
        language=language or None,
        source="manual",
        status="accepted",
        created_by_id=principal.agent_id,
    )
    session.add(example)
    session.flush()
    return ExampleView(example.id, example.text, example.intent, example.language, example.source, example.status, None)


@dataclass(frozen=True)
class RetrainResult:
    version: str
    examples: int
    corrections: int
    metrics: dict[str, object]


def retraining_examples(session: Session, principal: Principal) -> list[Example]:
    """What a retrain adds to the shipped examples: the accepted ones from the queue and from leads."""
    require(principal, Action.RETRAIN)
    from engine.services.knowledge import accepted_examples

    return accepted_examples(session)


def train_intent_model(settings: Settings, extra: Sequence[Example]) -> RetrainResult:
    """Train a new intent model on the shipped examples plus `extra`, and make it current. Takes minutes: call
    it with no transaction open. The app reloads its components afterwards; the previous model stays on disk
    (see `IntentModel.save`)."""
    from engine.components import build_embedder, intent_model_directory  # heavy imports only when retraining
    from engine.nlp.intent import EMBEDDING_CACHE_DIR, train_default_model

    embedder = build_embedder(settings)
    model = train_default_model(
        embedder,
        extra=extra,
        include_public=settings.nlp_backend == "real",
        cache_dir=settings.models_dir / EMBEDDING_CACHE_DIR,
    )
    model.save(intent_model_directory(settings))
    return RetrainResult(model.version, sum(model.counts["intent"].values()), len(extra), dict(model.metrics))


def record_retrain(session: Session, principal: Principal, result: RetrainResult) -> None:
    require(principal, Action.RETRAIN)
    audit.record(
        session,
        "intent.retrain",
        "intent_model",
        None,
        actor_id=principal.agent_id,
        after={"version": result.version, "extra": result.corrections},
    )

"""Plain copies of what the conversation page shows, taken inside the transaction that reads them, so the
page never touches a database object after its session closed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.services.accounts import list_agents
from engine.services.conversations import get_conversation, recent_tags
from engine.services.curation import KnowledgeView, knowledge_sources
from engine.workflow.permissions import Principal


@dataclass(frozen=True)
class MessageSnap:
    id: int
    direction: str
    kind: str
    received_at: datetime
    from_address: str | None
    body: str
    language: str | None
    language_score: float | None
    intent: str | None
    intent_score: float | None
    needs_review: bool
    suspicious: bool
    # The runner-up intent and its score, shown beside the primary one when the intent needs review.
    secondary_intent: str | None = None
    secondary_score: float | None = None


@dataclass(frozen=True)
class DraftSnap:
    id: int
    status: str
    action: str
    text: str
    final_text: str | None
    drafter: str
    model: str | None
    template_id: str | None
    knowledge_ids: list[int]
    note: str | None
    allowed: bool
    verdict: dict[str, Any]
    reject_reason: str | None
    decided_at: datetime | None


@dataclass(frozen=True)
class OutboxSnap:
    id: int
    draft_id: int
    state: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


@dataclass(frozen=True)
class ConversationSnap:
    id: int
    store_id: int
    store: str
    allow_list: list[str]
    marketplace: str | None
    subject: str
    buyer_name: str | None
    order_id: str | None
    asin: str | None
    product_title: str | None
    status: str
    language: str | None
    intent: str | None
    intent_score: float | None
    amazon_deadline: datetime | None
    assignee_id: int | None
    messages: list[MessageSnap]
    drafts: list[DraftSnap]
    current: DraftSnap | None
    notes: list[tuple[str, datetime, str]]  # (author, at, text)
    outbox: list[OutboxSnap]
    sources: list[KnowledgeView] = field(default_factory=list)
    agents: list[tuple[int, str]] = field(default_factory=list)  # who it can be assigned to
    order_context: dict[str, Any] | None = None  # from SP-API, when connected
    order_context_status: str | None = None  # "ok", "not connected" or why it failed
    tags: list[str] = field(default_factory=list)
    known_tags: list[str] = field(default_factory=list)  # the team's recent tags, offered as suggestions


def _draft(d: Any) -> DraftSnap:
    ids = [s["id"] for s in (d.sources or []) if s.get("kind") == "knowledge" and isinstance(s.get("id"), int)]
    return DraftSnap(
        d.id,
        d.status,
        d.action,
        d.text,
        d.final_text,
        d.drafter,
        d.model,
        d.template_id,
        ids,
        d.note,
        bool(d.allowed),
        dict(d.verdict or {}),
        d.reject_reason,
        d.decided_at,
    )


def conversation_snapshot(session: Session, principal: Principal, conversation_id: int) -> ConversationSnap:
    view = get_conversation(session, principal, conversation_id)
    c = view.conversation
    agents = list_agents(session, principal, store_id=c.store_id)
    names = {a.id: a.display_name for a in agents}
    current = _draft(view.current_draft) if view.current_draft else None
    return ConversationSnap(
        id=c.id,
        store_id=c.store_id,
        store=c.store.name,
        allow_list=list(c.store.allow_list or []),
        marketplace=c.marketplace,
        subject=c.subject,
        buyer_name=c.buyer_name,
        order_id=c.order_id,
        asin=c.asin,
        product_title=c.product_title,
        status=c.status,
        language=c.language,
        intent=c.intent,
        intent_score=c.intent_score,
        amazon_deadline=c.amazon_deadline,
        assignee_id=c.assignee_id,
        order_context=dict(c.order_context) if c.order_context else None,
        order_context_status=c.order_context_status,
        messages=[
            MessageSnap(
                m.id,
                m.direction,
                m.kind,
                m.received_at,
                m.from_address,
                m.body,
                m.language,
                m.language_score,
                m.intent,
                m.intent_score,
                bool(m.intent_needs_review),
                bool(m.suspicious),
                m.intent_secondary,
                (m.intent_scores or {}).get(m.intent_secondary or ""),
            )
            for m in view.messages
        ],
        drafts=[_draft(d) for d in view.drafts],
        current=current,
        notes=[(names.get(n.author_id or -1, "—"), n.created_at, n.text) for n in view.notes],
        outbox=[OutboxSnap(o.id, o.draft_id, o.state, o.attempts, o.last_error, o.sent_at) for o in view.outbox],
        sources=knowledge_sources(session, principal, current.knowledge_ids) if current else [],
        agents=[(a.id, a.display_name) for a in agents],
        tags=list(c.tags or []),
        known_tags=recent_tags(session, principal),
    )

"""The review queue: conversations awaiting action, most urgent (by Amazon's 24 h clock) first."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Text, and_, cast, func, select, true
from sqlalchemy.orm import Session, aliased

from engine.db.base import utcnow
from engine.db.models import Agent, Conversation, ConversationStatus, Draft, DraftStatus, Store
from engine.workflow.permissions import Action, Principal, Role, require
from engine.workflow.sla import SlaState, sla_state

ACTIVE_STATUSES = (ConversationStatus.OPEN, ConversationStatus.HOLD)


@dataclass(frozen=True)
class QueueFilters:
    statuses: tuple[str, ...] = tuple(ACTIVE_STATUSES)
    store_ids: tuple[int, ...] = ()
    marketplaces: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    intents: tuple[str, ...] = ()
    assignee_id: int | None = None
    blocked_only: bool = False  # pending draft refused by the compliance gate
    tag: str | None = None


@dataclass(frozen=True)
class QueueRow:
    conversation_id: int
    store: str
    marketplace: str | None
    buyer_name: str | None
    order_id: str | None
    subject: str
    status: str
    language: str | None
    intent: str | None
    assignee: str | None
    claimed_by: str | None  # who is working on it right now (an unexpired claim)
    tags: list[str]
    amazon_deadline: datetime | None
    sla: SlaState
    draft_id: int | None
    draft_allowed: bool | None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int
    counts: dict[str, int] = field(default_factory=dict)  # per status, within the principal's stores


def _visible(principal: Principal) -> ColumnElement[bool]:
    if principal.role == Role.ADMIN:
        return true()  # no filter at all, so counting by status can use an index alone
    return Conversation.store_id.in_(sorted(principal.store_ids) or [-1])


def has_tag(tag: str) -> ColumnElement[bool]:
    """Conversations carrying `tag`, on SQLite and PostgreSQL alike: the tags column is a JSON list written
    by SQLAlchemy's serializer, so the tag appears in its text exactly as `json.dumps` spells it."""
    spelled = json.dumps(tag).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return cast(Conversation.tags, Text).like(f"%{spelled}%", escape="\\")


def list_queue(
    session: Session,
    principal: Principal,
    filters: QueueFilters = QueueFilters(),
    *,
    page: int = 1,
    page_size: int = 50,
    now: datetime | None = None,
) -> QueuePage:
    require(principal, Action.VIEW_QUEUE)
    now = now or utcnow()
    pending = (
        select(Draft.conversation_id, func.max(Draft.id).label("draft_id"))
        .where(Draft.status == DraftStatus.PENDING)
        .group_by(Draft.conversation_id)
        .subquery()
    )
    conditions = [_visible(principal), Conversation.status.in_(filters.statuses)]
    if filters.store_ids:
        conditions.append(Conversation.store_id.in_(filters.store_ids))
    if filters.marketplaces:
        conditions.append(Conversation.marketplace.in_(filters.marketplaces))
    if filters.languages:
        conditions.append(Conversation.language.in_(filters.languages))
    if filters.intents:
        conditions.append(Conversation.intent.in_(filters.intents))
    if filters.assignee_id is not None:
        conditions.append(Conversation.assignee_id == filters.assignee_id)
    if filters.tag:
        conditions.append(has_tag(filters.tag))
    # Filtering, counting and paging need only conversation columns (the store join always matches, the
    # outer joins add at most one row each), so they run on narrow rows; the wide join is done for one page.
    matching = select(Conversation.id).where(*conditions)
    if filters.blocked_only:
        matching = (
            matching.join(pending, pending.c.conversation_id == Conversation.id)
            .join(Draft, Draft.id == pending.c.draft_id)
            .where(Draft.allowed.is_(False), Draft.action == "reply")
        )
    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    # Overdue first, then least time left; no deadline (nothing awaiting) last; priority breaks ties.
    urgency = (
        Conversation.amazon_deadline.is_(None),
        Conversation.amazon_deadline,
        Conversation.priority.desc(),
        Conversation.id,
    )
    page_ids = matching.order_by(*urgency).limit(page_size).offset(max(page - 1, 0) * page_size).subquery()
    claimer = aliased(Agent)
    ordered = (
        select(Conversation, Store.name, Agent.display_name, claimer.display_name, Draft)
        .join(page_ids, page_ids.c.id == Conversation.id)
        .join(Store, Store.id == Conversation.store_id)
        .outerjoin(Agent, Agent.id == Conversation.assignee_id)
        .outerjoin(claimer, and_(claimer.id == Conversation.claimed_by_id, Conversation.claim_expires_at > now))
        .outerjoin(pending, pending.c.conversation_id == Conversation.id)
        .outerjoin(Draft, Draft.id == pending.c.draft_id)
        .order_by(*urgency)
    )
    rows = [
        QueueRow(
            conversation_id=c.id,
            store=store_name,
            marketplace=c.marketplace,
            buyer_name=c.buyer_name,
            order_id=c.order_id,
            subject=c.subject,
            status=c.status,
            language=c.language,
            intent=c.intent,
            assignee=assignee,
            claimed_by=claimed_by,
            tags=list(c.tags or []),
            amazon_deadline=c.amazon_deadline,
            sla=sla_state(c.amazon_deadline, now),
            draft_id=d.id if d else None,
            draft_allowed=d.allowed if d else None,
        )
        for c, store_name, assignee, claimed_by, d in session.execute(ordered)
    ]
    counts_query = select(Conversation.status, func.count()).where(_visible(principal)).group_by(Conversation.status)
    counts = {status: number for status, number in session.execute(counts_query)}
    return QueuePage(rows=rows, total=total, counts=counts)

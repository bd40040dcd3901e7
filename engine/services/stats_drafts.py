"""Draft statistics — acceptance and edits, buyer satisfaction, recurring questions — and the scoping every
statistics query shares. Definitions are in `engine.services.stats`, which re-exports everything here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from engine.db.models import Conversation, Draft, DraftStatus, KnowledgeItem, Message, OutboxItem, OutboxState
from engine.errors import InputError
from engine.workflow.permissions import Action, Principal, Role, require
from engine.workflow.textdiff import normalized_edit_distance

UNKNOWN = "unknown"
POSITIVE_INTENTS = frozenset({"no_response_needed"})
NEGATIVE_INTENTS = frozenset({"complaint_feedback"})

SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])


# --- shared pieces -----------------------------------------------------------------------------------------


def check_window(since: datetime, until: datetime) -> None:
    if since >= until:
        raise InputError("The report's start must be before its end. Pick a later end date.")


def visible(principal: Principal) -> ColumnElement[bool]:
    require(principal, Action.VIEW_STATISTICS)
    if principal.role == Role.ADMIN:
        return literal(True)
    return Conversation.store_id.in_(sorted(principal.store_ids) or [-1])


def scoped(query: SelectT, conversation_id: Any, principal: Principal) -> SelectT:
    """`query` limited to the principal's stores through `conversation_id` (a NOT NULL foreign key).

    An admin sees every store: joining the conversation would only filter nothing, at the cost of a lookup
    per row, so the join is left out."""
    require(principal, Action.VIEW_STATISTICS)
    if principal.role == Role.ADMIN:
        return query
    return query.join(Conversation, Conversation.id == conversation_id).where(visible(principal))


def outcome() -> ColumnElement[str]:
    return case(
        (Draft.status == DraftStatus.REJECTED, literal("rejected")),
        (func.trim(Draft.final_text) == func.trim(Draft.text), literal("unchanged")),
        else_=literal("edited"),
    )


def decided(since: datetime, until: datetime) -> ColumnElement[bool]:
    return and_(
        Draft.decided_at >= since,
        Draft.decided_at < until,
        or_(Draft.status == DraftStatus.REJECTED, Draft.final_text.is_not(None)),
    )


# --- draft quality -----------------------------------------------------------------------------------------


@dataclass
class Acceptance:
    key: str
    unchanged: int = 0
    edited: int = 0
    rejected: int = 0
    edit_distance_sum: float = 0.0  # over edited drafts; unchanged ones add 0

    @property
    def total(self) -> int:
        return self.unchanged + self.edited + self.rejected

    @property
    def acceptance_rate(self) -> float | None:
        """Share of decided drafts sent exactly as drafted."""
        return None if self.total == 0 else self.unchanged / self.total

    @property
    def mean_edit_distance(self) -> float | None:
        """Mean normalised edit distance draft -> sent, over sent drafts (0 = unchanged, 1 = rewritten)."""
        sent = self.unchanged + self.edited
        return None if sent == 0 else self.edit_distance_sum / sent


@dataclass(frozen=True)
class DraftQuality:
    overall: Acceptance
    by_intent: list[Acceptance]
    by_language: list[Acceptance]
    by_template: list[Acceptance]
    by_drafter: list[Acceptance]
    rejection_reasons: list[tuple[str, int]] = field(default_factory=list)


_QUALITY_DIMENSIONS = {
    "intent": Draft.intent,
    "language": Draft.language,
    "template": Draft.template_id,
    "drafter": Draft.drafter,
}


def draft_quality(
    session: Session, principal: Principal, *, since: datetime, until: datetime, now: datetime
) -> DraftQuality:
    check_window(since, until)
    kind_of = outcome()
    columns = list(_QUALITY_DIMENSIONS.values())
    grouped = session.execute(
        scoped(select(*columns, kind_of, func.count(Draft.id)), Draft.conversation_id, principal)
        .where(decided(since, until))
        .group_by(*columns, kind_of)
    )
    tables: dict[str, dict[str, Acceptance]] = {name: {} for name in _QUALITY_DIMENSIONS}
    overall = Acceptance("all")

    def rows_for(values: Sequence[str | None]) -> list[Acceptance]:
        found = [overall]
        for name, value in zip(_QUALITY_DIMENSIONS, values, strict=True):
            key = value or UNKNOWN
            found.append(tables[name].setdefault(key, Acceptance(key)))
        return found

    for *values, kind, count in grouped:
        for row in rows_for(values):
            setattr(row, kind, getattr(row, kind) + int(count))
    edited = session.execute(
        scoped(select(*columns, Draft.text, Draft.final_text), Draft.conversation_id, principal).where(
            decided(since, until), kind_of == "edited"
        )
    )
    for *values, drafted, sent in edited:
        distance = normalized_edit_distance(drafted.strip(), (sent or "").strip())
        for row in rows_for(values):
            row.edit_distance_sum += distance
    reason = func.lower(func.trim(Draft.reject_reason))
    reasons = session.execute(
        scoped(select(reason, func.count(Draft.id)), Draft.conversation_id, principal)
        .where(decided(since, until), Draft.status == DraftStatus.REJECTED)
        .group_by(reason)
        .order_by(func.count(Draft.id).desc(), reason)
        .limit(20)
    )

    def ordered(name: str) -> list[Acceptance]:
        return sorted(tables[name].values(), key=lambda row: (-row.total, row.key))

    return DraftQuality(
        overall=overall,
        by_intent=ordered("intent"),
        by_language=ordered("language"),
        by_template=ordered("template"),
        by_drafter=ordered("drafter"),
        rejection_reasons=[(text or UNKNOWN, int(count)) for text, count in reasons],
    )


# --- buyer satisfaction ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Satisfaction:
    replies: int
    positive: int
    negative: int
    neutral: int
    no_follow_up: int

    @property
    def positive_share(self) -> float | None:
        signalled = self.positive + self.negative + self.neutral
        return None if signalled == 0 else self.positive / signalled

    @property
    def negative_share(self) -> float | None:
        signalled = self.positive + self.negative + self.neutral
        return None if signalled == 0 else self.negative / signalled


def follow_up_signal(answered_intent: str | None, next_intent: str | None, has_next: bool) -> str:
    """positive / negative / neutral / none for one reply (pure; see the module docstring)."""
    if not has_next:
        return "none"
    if next_intent in POSITIVE_INTENTS:
        return "positive"
    if next_intent in NEGATIVE_INTENTS or (next_intent is not None and next_intent == answered_intent):
        return "negative"
    return "neutral"


def satisfaction(
    session: Session, principal: Principal, *, since: datetime, until: datetime, now: datetime
) -> Satisfaction:
    check_window(since, until)
    following = aliased(Message)
    next_id = (
        select(following.id)
        .where(
            following.conversation_id == OutboxItem.conversation_id,
            following.direction == "in",
            following.kind == "buyer_message",
            following.received_at > OutboxItem.sent_at,
        )
        .order_by(following.received_at, following.id)
        .limit(1)
        .scalar_subquery()
    )
    follow = aliased(Message)
    query = select(Draft.intent, follow.intent, follow.id.is_not(None), func.count(OutboxItem.id)).join(
        Draft, Draft.id == OutboxItem.draft_id
    )
    grouped = session.execute(
        scoped(query, OutboxItem.conversation_id, principal)
        .outerjoin(follow, follow.id == next_id)
        .where(
            OutboxItem.state == OutboxState.SENT,
            OutboxItem.sent_at >= since,
            OutboxItem.sent_at < until,
        )
        .group_by(Draft.intent, follow.intent, follow.id.is_not(None))
    )
    tally: Counter[str] = Counter()
    for answered_intent, next_intent, has_next, count in grouped:
        tally[follow_up_signal(answered_intent, next_intent, bool(has_next))] += int(count)
    return Satisfaction(
        replies=sum(tally.values()),
        positive=tally["positive"],
        negative=tally["negative"],
        neutral=tally["neutral"],
        no_follow_up=tally["none"],
    )


# --- recurring questions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecurringQuestion:
    knowledge_id: int
    question: str
    intent: str
    language: str
    drafts: int  # drafts in the window that drew on this past answer


def recurring_questions(
    session: Session, principal: Principal, *, since: datetime, until: datetime, now: datetime, limit: int = 10
) -> list[RecurringQuestion]:
    """The past answers drafts drew on most often: the questions buyers keep asking."""
    check_window(since, until)
    cited: Counter[int] = Counter()
    for (sources,) in session.execute(
        scoped(select(Draft.sources), Draft.conversation_id, principal).where(
            Draft.created_at >= since, Draft.created_at < until
        )
    ):
        for source in sources or []:
            if source.get("kind") == "knowledge" and isinstance(source.get("id"), int):
                cited[source["id"]] += 1
    top = cited.most_common(limit)
    items = {
        item.id: item
        for item in session.scalars(select(KnowledgeItem).where(KnowledgeItem.id.in_([k for k, _ in top] or [-1])))
    }
    return [
        RecurringQuestion(k, items[k].question, items[k].intent, items[k].language, count)
        for k, count in top
        if k in items
    ]

"""Draft statistics — acceptance and edits, buyer satisfaction, recurring questions — and the scoping every
statistics query shares. Definitions are in `engine.services.stats`, which re-exports everything here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    column,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session, aliased

from engine.db.models import Conversation, Draft, DraftStatus, KnowledgeItem, Message, OutboxItem, OutboxState
from engine.errors import InputError
from engine.services.stats_record import sent_edit_distance
from engine.workflow.permissions import Action, Principal, Role, require

UNKNOWN = "unknown"
POSITIVE_INTENTS = frozenset({"no_response_needed"})
NEGATIVE_INTENTS = frozenset({"complaint_feedback"})
_NO_INTENT = ""
_UNRECORDED = "unrecorded"

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


def decided(since: datetime, until: datetime) -> ColumnElement[bool]:
    return and_(
        Draft.decided_at >= since,
        Draft.decided_at < until,
        or_(Draft.status == DraftStatus.REJECTED, Draft.final_text.is_not(None)),
    )


@dataclass(frozen=True)
class Decisions:
    """Drafts decided in a window, tallied by some of their columns: (values, outcome, drafts, summed edit
    distance) per group. `sent` selects the sent ones among them, for queries of their own."""

    tallies: list[tuple[tuple[Any, ...], str, int, float]]
    sent: ColumnElement[bool]


def decisions(session: Session, principal: Principal, since: datetime, until: datetime, *columns: Any) -> Decisions:
    """The drafts decided in the window by `columns`, each rejected, unchanged or edited.

    Read from the recorded edit distance (0 = unchanged) and the `ix_draft_decisions` index alone; drafts sent
    without a recorded distance (written by other means than `engine.send.outbox`) are compared here."""
    kind_of = case(
        (Draft.status == DraftStatus.REJECTED, literal("rejected")),
        (Draft.edit_distance == 0, literal("unchanged")),
        (Draft.edit_distance.is_not(None), literal("edited")),
        else_=literal(_UNRECORDED),  # not sent (not decided), or sent without a recorded distance
    )
    grouped = session.execute(
        scoped(select(*columns, kind_of, func.count(), func.sum(Draft.edit_distance)), Draft.conversation_id, principal)
        .where(Draft.decided_at >= since, Draft.decided_at < until)
        .group_by(*columns, kind_of)
    )
    tallies: list[tuple[tuple[Any, ...], str, int, float]] = []
    unrecorded = False
    for *values, kind, count, distances in grouped:
        if kind == _UNRECORDED:
            unrecorded = True
        else:
            sent_distance = 0.0 if kind == "rejected" else float(distances or 0.0)
            tallies.append((tuple(values), kind, int(count), sent_distance))
    if not unrecorded:
        return Decisions(tallies, and_(Draft.status != DraftStatus.REJECTED, Draft.edit_distance.is_not(None)))
    sent_unrecorded = and_(
        Draft.status != DraftStatus.REJECTED, Draft.edit_distance.is_(None), Draft.final_text.is_not(None)
    )
    for *values, drafted, sent in session.execute(
        scoped(select(*columns, Draft.text, Draft.final_text), Draft.conversation_id, principal).where(
            Draft.decided_at >= since, Draft.decided_at < until, sent_unrecorded
        )
    ):
        distance = sent_edit_distance(drafted, sent)
        tallies.append((tuple(values), "unchanged" if distance == 0 else "edited", 1, distance))
    return Decisions(tallies, and_(Draft.status != DraftStatus.REJECTED, Draft.final_text.is_not(None)))


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
    tables: dict[str, dict[str, Acceptance]] = {name: {} for name in _QUALITY_DIMENSIONS}
    overall = Acceptance("all")
    for values, kind, count, distances in decisions(
        session, principal, since, until, *_QUALITY_DIMENSIONS.values()
    ).tallies:
        rows = [overall]
        for name, value in zip(_QUALITY_DIMENSIONS, values, strict=True):
            key = value or UNKNOWN
            rows.append(tables[name].setdefault(key, Acceptance(key)))
        for row in rows:
            setattr(row, kind, getattr(row, kind) + count)
            row.edit_distance_sum += distances
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
    # The intent of the buyer's next message, read in the same index lookup that finds it; "" stands for a next
    # message without an intent, so NULL is left to mean "no next message".
    next_intent = (
        select(func.coalesce(following.intent, literal(_NO_INTENT)))
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
    sent = (
        select(Draft.intent.label("answered"), next_intent.label("following"))
        .select_from(OutboxItem)
        .join(Draft, Draft.id == OutboxItem.draft_id)
        .where(OutboxItem.state == OutboxState.SENT, OutboxItem.sent_at >= since, OutboxItem.sent_at < until)
    )
    # Materialised on PostgreSQL: inlined, the next-message lookup lands in the grouping key, is costed twice
    # and sets off JIT compilation that takes longer than the query.
    replies = (
        scoped(sent, OutboxItem.conversation_id, principal)
        .cte("replies")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    grouped = session.execute(
        select(replies.c.answered, replies.c.following, func.count()).group_by(replies.c.answered, replies.c.following)
    )
    tally: Counter[str] = Counter()
    for answered_intent, following_intent, count in grouped:
        has_next = following_intent is not None
        tally[follow_up_signal(answered_intent, following_intent or None, has_next)] += int(count)
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
    # Unpacked from each draft's `sources` (a JSON list) in SQL: the page needs ten ids, not every list.
    source, is_knowledge, knowledge_id = _sources(session)
    knowledge_id = knowledge_id.label("knowledge_id")
    cited = (
        scoped(
            select(knowledge_id, func.count()).select_from(Draft).join(source, true()), Draft.conversation_id, principal
        )
        .where(Draft.created_at >= since, Draft.created_at < until, is_knowledge)
        .group_by(knowledge_id)
        .order_by(func.count().desc(), knowledge_id)
        .limit(limit)
    )
    top = [(int(k), int(count)) for k, count in session.execute(cited)]
    items = {
        item.id: item
        for item in session.scalars(select(KnowledgeItem).where(KnowledgeItem.id.in_([k for k, _ in top] or [-1])))
    }
    return [
        RecurringQuestion(k, items[k].question, items[k].intent, items[k].language, count)
        for k, count in top
        if k in items
    ]


def _sources(session: Session) -> tuple[Any, ColumnElement[bool], ColumnElement[Any]]:
    """The elements of `Draft.sources` as a table to join, whether an element cites a knowledge item (kind
    "knowledge" and an integer id), and that id; in each backend's JSON functions."""
    if session.get_bind().dialect.name == "postgresql":
        # A JSON value that is not a list (none is written, but a crash here would take the page down) has no
        # elements rather than raising; each element is read into (kind, id) once.
        sources = case((func.json_typeof(Draft.sources) == "array", Draft.sources))
        element = (
            func.json_to_recordset(sources)
            .table_valued(column("kind", String), column("id", JSON))
            .render_derived(with_types=True)
        )
        knowledge_id = cast(element.c.id, Text)
        is_knowledge = and_(
            element.c.kind == "knowledge",
            func.json_typeof(element.c.id) == "number",
            knowledge_id.op("~")("^-?[0-9]+$"),
        )
        return element, is_knowledge, cast(knowledge_id, BigInteger)
    element = func.json_each(Draft.sources).table_valued("value", "type")
    is_knowledge = and_(
        element.c.type == "object",
        func.json_extract(element.c.value, "$.kind") == "knowledge",
        func.json_type(element.c.value, "$.id") == "integer",
    )
    return element, is_knowledge, func.json_extract(element.c.value, "$.id")

"""Statistics for leads: volume, response times against Amazon's 24 h clock, per-agent work, draft quality,
the buyer-satisfaction signal and recurring questions, with a drill-down to the conversations behind a number.

Counting happens in SQL (GROUP BY) so a report over 100k conversations stays fast; only what SQL cannot do
portably on SQLite and PostgreSQL — percentiles, edit distances — is finished in Python over narrow rows.
Every function takes `(session, principal, *, since, until, now)` and sees only the principal's stores.

Definitions:
- A *buyer message* is an incoming message of kind `buyer_message`; the window is `since <= received < until`.
- A buyer message is *answered* by the first reply in its conversation at or after it: an outgoing message or
  a sent outbox item. A "no response needed" before that answer removes it from the response statistics.
- *Draft outcome*: `rejected`; `unchanged` when the sent text equals the draft (ignoring outer whitespace);
  otherwise `edited`. A draft counts in the window of its decision time.
- *Satisfaction*: after each reply we sent, the buyer's next message is *positive* when its intent is
  `no_response_needed` (thanks and acknowledgements), *negative* when it is `complaint_feedback` or the same
  intent as the message we answered, *neutral* otherwise; replies without a next message have no signal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from engine.db.models import (
    Agent,
    AuditEvent,
    Conversation,
    Draft,
    DraftStatus,
    KnowledgeItem,
    Message,
    OutboxItem,
    OutboxState,
    Store,
)
from engine.errors import InputError
from engine.workflow.permissions import Action, Principal, Role, require
from engine.workflow.sla import AMAZON_RESPONSE_WINDOW, late_response_rate, percentile
from engine.workflow.textdiff import normalized_edit_distance

UNKNOWN = "unknown"
LATE_RATE_WINDOWS = (7, 30, 90)
POSITIVE_INTENTS = frozenset({"no_response_needed"})
NEGATIVE_INTENTS = frozenset({"complaint_feedback"})
VOLUME_DIMENSIONS = ("day", "intent", "language", "marketplace", "store")
DRAFT_DIMENSIONS = ("template", "drafter", "rejection_reason")

Pair = tuple[datetime, datetime | None]


# --- shared pieces -----------------------------------------------------------------------------------------


def _check_window(since: datetime, until: datetime) -> None:
    if since >= until:
        raise InputError("The report's start must be before its end. Pick a later end date.")


def _visible(principal: Principal) -> ColumnElement[bool]:
    require(principal, Action.VIEW_STATISTICS)
    if principal.role == Role.ADMIN:
        return literal(True)
    return Conversation.store_id.in_(sorted(principal.store_ids) or [-1])


def _day(session: Session, column: Any) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp column, as a string `YYYY-MM-DD`, on either backend."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)


def _buyer_messages(since: datetime, until: datetime) -> ColumnElement[bool]:
    return and_(
        Message.direction == "in",
        Message.kind == "buyer_message",
        Message.received_at >= since,
        Message.received_at < until,
    )


def _counts(rows: Sequence[tuple[str | None, int]]) -> dict[str, int]:
    result: Counter[str] = Counter()
    for key, count in rows:
        result[key or UNKNOWN] += int(count)
    return dict(result.most_common())


# --- volume ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Volume:
    total: int
    by_day: list[tuple[str, int]]  # (YYYY-MM-DD, messages), oldest first
    by_intent: dict[str, int]
    by_language: dict[str, int]
    by_marketplace: dict[str, int]
    by_store: dict[str, int]


def volume(session: Session, principal: Principal, *, since: datetime, until: datetime, now: datetime) -> Volume:
    """Buyer messages received in the window, by day, intent, language, marketplace and store."""
    _check_window(since, until)
    visible = _visible(principal)

    def grouped(dimension: Any) -> dict[str, int]:
        query = (
            select(dimension, func.count(Message.id))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Store, Store.id == Conversation.store_id)
            .where(visible, _buyer_messages(since, until))
            .group_by(dimension)
        )
        return _counts([(key, count) for key, count in session.execute(query)])

    by_day = grouped(_day(session, Message.received_at))
    return Volume(
        total=sum(by_day.values()),
        by_day=sorted(by_day.items()),
        by_intent=grouped(Message.intent),
        by_language=grouped(Message.language),
        by_marketplace=grouped(Conversation.marketplace),
        by_store=grouped(Store.name),
    )


# --- response times ----------------------------------------------------------------------------------------


def response_pairs_in(session: Session, principal: Principal, since: datetime, until: datetime) -> list[Pair]:
    """(received, answered_at) for each buyer message received in the window that needs a response."""
    visible = _visible(principal)
    later = aliased(Message)
    reply_message = (
        select(func.min(later.received_at))
        .where(
            later.conversation_id == Message.conversation_id,
            later.direction == "out",
            later.received_at >= Message.received_at,
        )
        .scalar_subquery()
    )
    reply_outbox = (
        select(func.min(OutboxItem.sent_at))
        .where(
            OutboxItem.conversation_id == Message.conversation_id,
            OutboxItem.state == OutboxState.SENT,
            OutboxItem.sent_at >= Message.received_at,
        )
        .scalar_subquery()
    )
    no_response_needed = (
        select(func.min(AuditEvent.at))
        .where(
            AuditEvent.entity == "conversation",
            AuditEvent.entity_id == Message.conversation_id,
            AuditEvent.action == "conversation.no_response_needed",
            AuditEvent.at >= Message.received_at,
        )
        .scalar_subquery()
    )
    query = (
        select(Message.received_at, reply_message, reply_outbox, no_response_needed)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(visible, _buyer_messages(since, until))
    )
    pairs: list[Pair] = []
    for received, by_message, by_outbox, cleared in session.execute(query):
        answered = min((t for t in (by_message, by_outbox) if t is not None), default=None)
        if cleared is not None and (answered is None or cleared < answered):
            continue
        pairs.append((received, answered))
    return sorted(pairs, key=lambda pair: pair[0])


def on_time_share(pairs: Sequence[Pair], now: datetime) -> float | None:
    """Share of due buyer messages answered within 24 h (the SLA hit rate); None when none is due yet."""
    due = on_time = 0
    for received, answered in pairs:
        if answered is not None and answered <= now:
            due += 1
            on_time += answered - received <= AMAZON_RESPONSE_WINDOW
        elif now - received > AMAZON_RESPONSE_WINDOW:
            due += 1
    return None if due == 0 else on_time / due


@dataclass(frozen=True)
class ResponseTimes:
    messages: int  # buyer messages in the window that needed a response
    answered: int
    median_seconds: float | None
    p90_seconds: float | None
    sla_hit_rate: float | None  # within 24 h, over the window
    late_rates: dict[int, float | None]  # Seller Central's late-response rate over the last 7/30/90 days


def response_times(
    session: Session, principal: Principal, *, since: datetime, until: datetime, now: datetime
) -> ResponseTimes:
    _check_window(since, until)
    pairs = response_pairs_in(session, principal, since, until)
    seconds = [(answered - received).total_seconds() for received, answered in pairs if answered is not None]
    recent = response_pairs_in(session, principal, now - timedelta(days=max(LATE_RATE_WINDOWS)), now)
    return ResponseTimes(
        messages=len(pairs),
        answered=len(seconds),
        median_seconds=percentile(seconds, 50),
        p90_seconds=percentile(seconds, 90),
        sla_hit_rate=on_time_share(pairs, now),
        late_rates={days: late_response_rate(recent, now, days) for days in LATE_RATE_WINDOWS},
    )


# --- agents ------------------------------------------------------------------------------------------------


def _outcome() -> ColumnElement[str]:
    return case(
        (Draft.status == DraftStatus.REJECTED, literal("rejected")),
        (func.trim(Draft.final_text) == func.trim(Draft.text), literal("unchanged")),
        else_=literal("edited"),
    )


def _decided(since: datetime, until: datetime) -> ColumnElement[bool]:
    return and_(
        Draft.decided_at >= since,
        Draft.decided_at < until,
        or_(Draft.status == DraftStatus.REJECTED, Draft.final_text.is_not(None)),
    )


@dataclass(frozen=True)
class AgentRow:
    agent_id: int
    name: str
    handled: int  # drafts decided: sent (as drafted or edited) or rejected
    sent: int
    rejected: int
    median_response_seconds: float | None  # buyer message received -> reply approved


def agents(
    session: Session, principal: Principal, *, since: datetime, until: datetime, now: datetime
) -> list[AgentRow]:
    _check_window(since, until)
    visible = _visible(principal)
    outcome = _outcome()
    counts = session.execute(
        select(Draft.decided_by_id, Agent.display_name, outcome, func.count(Draft.id))
        .join(Conversation, Conversation.id == Draft.conversation_id)
        .join(Agent, Agent.id == Draft.decided_by_id)
        .where(visible, _decided(since, until))
        .group_by(Draft.decided_by_id, Agent.display_name, outcome)
    )
    names: dict[int, str] = {}
    tally: dict[int, Counter[str]] = defaultdict(Counter)
    for agent_id, name, kind, count in counts:
        if agent_id is None:
            continue
        names[agent_id] = name
        tally[agent_id][kind] += int(count)
    durations: dict[int, list[float]] = defaultdict(list)
    timing = session.execute(
        select(Draft.decided_by_id, Message.received_at, Draft.decided_at)
        .join(Conversation, Conversation.id == Draft.conversation_id)
        .join(Message, Message.id == Draft.message_id)
        .where(visible, _decided(since, until), Draft.status != DraftStatus.REJECTED)
    )
    for agent_id, received, decided in timing:
        if agent_id is not None and decided is not None:
            durations[agent_id].append((decided - received).total_seconds())
    rows = [
        AgentRow(
            agent_id=agent_id,
            name=names[agent_id],
            handled=sum(tally[agent_id].values()),
            sent=tally[agent_id]["unchanged"] + tally[agent_id]["edited"],
            rejected=tally[agent_id]["rejected"],
            median_response_seconds=percentile(durations[agent_id], 50),
        )
        for agent_id in names
    ]
    return sorted(rows, key=lambda row: (-row.handled, row.name))


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
    _check_window(since, until)
    visible = _visible(principal)
    outcome = _outcome()
    columns = list(_QUALITY_DIMENSIONS.values())
    grouped = session.execute(
        select(*columns, outcome, func.count(Draft.id))
        .join(Conversation, Conversation.id == Draft.conversation_id)
        .where(visible, _decided(since, until))
        .group_by(*columns, outcome)
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
        select(*columns, Draft.text, Draft.final_text)
        .join(Conversation, Conversation.id == Draft.conversation_id)
        .where(visible, _decided(since, until), outcome == "edited")
    )
    for *values, drafted, sent in edited:
        distance = normalized_edit_distance(drafted.strip(), (sent or "").strip())
        for row in rows_for(values):
            row.edit_distance_sum += distance
    reason = func.lower(func.trim(Draft.reject_reason))
    reasons = session.execute(
        select(reason, func.count(Draft.id))
        .join(Conversation, Conversation.id == Draft.conversation_id)
        .where(visible, _decided(since, until), Draft.status == DraftStatus.REJECTED)
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
    _check_window(since, until)
    visible = _visible(principal)
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
    grouped = session.execute(
        select(Draft.intent, follow.intent, follow.id.is_not(None), func.count(OutboxItem.id))
        .join(Draft, Draft.id == OutboxItem.draft_id)
        .join(Conversation, Conversation.id == OutboxItem.conversation_id)
        .outerjoin(follow, follow.id == next_id)
        .where(
            visible,
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
    _check_window(since, until)
    visible = _visible(principal)
    cited: Counter[int] = Counter()
    for (sources,) in session.execute(
        select(Draft.sources)
        .join(Conversation, Conversation.id == Draft.conversation_id)
        .where(visible, Draft.created_at >= since, Draft.created_at < until)
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


# --- drill-down --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationRef:
    conversation_id: int
    store: str
    marketplace: str | None
    subject: str
    language: str | None
    intent: str | None
    status: str


def conversations_for(
    session: Session,
    principal: Principal,
    *,
    dimension: str,
    value: str,
    since: datetime,
    until: datetime,
    now: datetime,
    limit: int = 200,
) -> list[ConversationRef]:
    """The conversations behind one bar of a chart: `dimension` is a volume or draft dimension."""
    _check_window(since, until)
    visible = _visible(principal)
    base = select(Conversation, Store.name).join(Store, Store.id == Conversation.store_id).where(visible)
    if dimension in VOLUME_DIMENSIONS:
        column = {
            "day": _day(session, Message.received_at),
            "intent": Message.intent,
            "language": Message.language,
            "marketplace": Conversation.marketplace,
            "store": Store.name,
        }[dimension]
        matching = select(Message.conversation_id).join(Conversation, Conversation.id == Message.conversation_id)
        matching = matching.join(Store, Store.id == Conversation.store_id).where(_buyer_messages(since, until))
    elif dimension in DRAFT_DIMENSIONS:
        column = {
            "template": Draft.template_id,
            "drafter": Draft.drafter,
            "rejection_reason": func.lower(func.trim(Draft.reject_reason)),
        }[dimension]
        matching = select(Draft.conversation_id).where(_decided(since, until))
    else:
        known = ", ".join((*VOLUME_DIMENSIONS, *DRAFT_DIMENSIONS))
        raise InputError(f"Cannot drill down by {dimension!r}; use one of: {known}.")
    condition = column.is_(None) if value == UNKNOWN else column == value
    query = (
        base.where(Conversation.id.in_(matching.where(condition)))
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(limit)
    )
    return [
        ConversationRef(c.id, store, c.marketplace, c.subject, c.language, c.intent, c.status)
        for c, store in session.execute(query)
    ]


def day_range(since: datetime, until: datetime) -> list[str]:
    """Every UTC day of the window as `YYYY-MM-DD`, for charts that must show empty days too."""
    days = []
    day = since.date()
    while day < until.date() or (day == until.date() and until.time() != datetime.min.time()):
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days

"""Statistics for leads: volume, response times against Amazon's 24 h clock, per-agent work, draft quality,
the buyer-satisfaction signal and recurring questions, with a drill-down to the conversations behind a number.

Counting happens in SQL (GROUP BY, conditional counts) so a report over 100k conversations stays fast
(`evals/bench_scale.py` measures it); percentiles are finished in Python over one number per row. What would
need months of rows to recompute — when each buyer message was answered or cleared, how far each sent draft
is from its draft — is recorded as it happens (`engine.services.stats_record`). Draft quality, satisfaction
and recurring questions live in `engine.services.stats_drafts` and are re-exported here.
Every function takes `(session, principal, *, since, until, now)` and sees only the principal's stores.

Definitions:
- A *buyer message* is an incoming message of kind `buyer_message`; the window is `since <= received < until`.
- A buyer message is *answered* by the first reply in its conversation at or after it: an outgoing message or
  a sent outbox item. A "no response needed" before that answer removes it from the response statistics.
  Response times are measured to the microsecond on PostgreSQL and to the millisecond on SQLite.
- *Draft outcome*: `rejected`; `unchanged` when the sent text equals the draft (ignoring outer whitespace);
  otherwise `edited`. A draft counts in the window of its decision time.
- *Satisfaction*: after each reply we sent, the buyer's next message is *positive* when its intent is
  `no_response_needed` (thanks and acknowledgements), *negative* when it is `complaint_feedback` or the same
  intent as the message we answered, *neutral* otherwise; replies without a next message have no signal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from engine.db.models import Agent, Conversation, Draft, Message, Store
from engine.errors import InputError
from engine.services.stats_drafts import (
    NEGATIVE_INTENTS,
    POSITIVE_INTENTS,
    UNKNOWN,
    Acceptance,
    DraftQuality,
    RecurringQuestion,
    Satisfaction,
    check_window,
    decided,
    decisions,
    draft_quality,
    follow_up_signal,
    recurring_questions,
    satisfaction,
    scoped,
    visible,
)
from engine.workflow.permissions import Principal
from engine.workflow.sla import AMAZON_RESPONSE_WINDOW, percentile

__all__ = [
    "DRAFT_DIMENSIONS",
    "LATE_RATE_WINDOWS",
    "NEGATIVE_INTENTS",
    "POSITIVE_INTENTS",
    "UNKNOWN",
    "VOLUME_DIMENSIONS",
    "Acceptance",
    "AgentRow",
    "ConversationRef",
    "DraftQuality",
    "RecurringQuestion",
    "ResponseTimes",
    "Satisfaction",
    "Volume",
    "agents",
    "conversations_for",
    "day_range",
    "draft_quality",
    "follow_up_signal",
    "on_time_share",
    "recurring_questions",
    "response_pairs_in",
    "response_times",
    "satisfaction",
    "volume",
]

LATE_RATE_WINDOWS = (7, 30, 90)
VOLUME_DIMENSIONS = ("day", "intent", "language", "marketplace", "store")
DRAFT_DIMENSIONS = ("template", "drafter", "rejection_reason")

Pair = tuple[datetime, datetime | None]


# --- shared pieces -----------------------------------------------------------------------------------------


def _day(session: Session, column: Any) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp column, as a string `YYYY-MM-DD`, on either backend."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)


def _seconds(session: Session, start: Any, end: Any) -> ColumnElement[Any]:
    """`end - start` in seconds, on either backend; SQLite keeps timestamps as text and counts milliseconds."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_part("epoch", end - start, type_=Float)  # a double; EXTRACT's numeric is slower to sum
    return func.round((func.julianday(end) - func.julianday(start)) * 86_400_000) / 1000.0


def _buyer_messages(since: datetime, until: datetime) -> ColumnElement[bool]:
    return and_(
        Message.direction == "in",
        Message.kind == "buyer_message",
        Message.received_at >= since,
        Message.received_at < until,
    )


def _ranked(counts: Counter[str]) -> dict[str, int]:
    return dict(counts.most_common())


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
    check_window(since, until)
    # Two passes: day, intent and language are read from a message index alone, and only marketplace and store
    # look up each message's conversation. One pass grouped by all five would sort the window's messages on
    # every combination, and look up the conversation while doing it.
    in_window = (_buyer_messages(since, until), Message.conversation_id.is_not(None))
    days, intents, languages = Counter[str](), Counter[str](), Counter[str]()
    keys = (_day(session, Message.received_at), Message.intent, Message.language)
    by_message = scoped(select(*keys, func.count()).where(*in_window), Message.conversation_id, principal)
    for day, intent, language, count in session.execute(by_message.group_by(*keys)):
        days[day] += int(count)
        intents[intent or UNKNOWN] += int(count)
        languages[language or UNKNOWN] += int(count)
    marketplaces, stores = Counter[str](), Counter[str]()
    places = (
        select(Conversation.marketplace, Store.name, func.count())
        .select_from(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Store, Store.id == Conversation.store_id)
        .where(visible(principal), *in_window)
        .group_by(Conversation.marketplace, Store.name)
    )
    for marketplace, store, count in session.execute(places):
        marketplaces[marketplace or UNKNOWN] += int(count)
        stores[store or UNKNOWN] += int(count)
    tallies = (days, intents, languages, marketplaces, stores)
    by_day, by_intent, by_language, by_marketplace, by_store = (_ranked(tally) for tally in tallies)
    return Volume(
        total=sum(by_day.values()),
        by_day=sorted(by_day.items()),
        by_intent=by_intent,
        by_language=by_language,
        by_marketplace=by_marketplace,
        by_store=by_store,
    )


# --- response times ----------------------------------------------------------------------------------------


def _needs_response() -> ColumnElement[bool]:
    """Not cleared ("no response needed") before its answer; `answered_at` and `cleared_at` are recorded."""
    return or_(
        Message.cleared_at.is_(None), and_(Message.answered_at.is_not(None), Message.cleared_at >= Message.answered_at)
    )


def _responses(principal: Principal, received: ColumnElement[bool], *columns: Any) -> Select[Any]:
    """`columns` over the buyer messages that needed a response, received when `received` says."""
    query = select(*columns).where(
        Message.direction == "in",
        Message.kind == "buyer_message",
        received,
        Message.conversation_id.is_not(None),
        _needs_response(),
    )
    return scoped(query, Message.conversation_id, principal)


def _received_in(since: datetime, until: datetime) -> ColumnElement[bool]:
    return and_(Message.received_at >= since, Message.received_at < until)


def response_pairs_in(session: Session, principal: Principal, since: datetime, until: datetime) -> list[Pair]:
    """(received, answered_at) for each buyer message received in the window that needs a response."""
    query = _responses(principal, _received_in(since, until), Message.received_at, Message.answered_at)
    return [(received, answered) for received, answered in session.execute(query.order_by(Message.received_at))]


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
    check_window(since, until)
    # The rules of `on_time_share` and `engine.workflow.sla.late_response_rate`, counted in SQL: a message is
    # due once answered by `now` or 24 h old unanswered; late when answered after 24 h, or due and unanswered.
    response_seconds = _seconds(session, Message.received_at, Message.answered_at)
    limit = AMAZON_RESPONSE_WINDOW.total_seconds()
    answered_by_now = and_(Message.answered_at.is_not(None), Message.answered_at <= now)
    overdue = and_(
        or_(Message.answered_at.is_(None), Message.answered_at > now),
        Message.received_at < now - AMAZON_RESPONSE_WINDOW,
    )
    due = or_(answered_by_now, overdue)
    late = or_(overdue, and_(answered_by_now, response_seconds > limit))
    on_time = and_(answered_by_now, response_seconds <= limit)
    window = _received_in(since, until)
    counts = _responses(
        principal,
        window,
        func.count(),
        func.count(Message.answered_at),
        func.count().filter(due),
        func.count().filter(on_time),
    )
    messages, answered, due_count, on_time_count = session.execute(counts).one()
    answered_in_window = _responses(principal, window, response_seconds).where(Message.answered_at.is_not(None))
    seconds = [float(value) for (value,) in session.execute(answered_in_window)]
    return ResponseTimes(
        messages=int(messages),
        answered=int(answered),
        median_seconds=percentile(seconds, 50),
        p90_seconds=percentile(seconds, 90),
        sla_hit_rate=None if due_count == 0 else on_time_count / due_count,
        late_rates=_late_rates(session, principal, now, due, late),
    )


def _late_rates(
    session: Session, principal: Principal, now: datetime, due: ColumnElement[bool], late: ColumnElement[bool]
) -> dict[int, float | None]:
    """Seller Central's late-response rate over the messages received in (now - days, now), for each window.

    Counted per stretch between two window starts, from the newest back, and added up: each message is tested
    once rather than once per window."""
    rates: dict[int, float | None] = {}
    counted = late_count = 0
    stretch_end = Message.received_at < now
    for days in sorted(LATE_RATE_WINDOWS):
        start = now - timedelta(days=days)
        stretch = and_(Message.received_at > start, stretch_end)
        query = _responses(principal, stretch, func.count().filter(due), func.count().filter(late))
        stretch_counted, stretch_late = session.execute(query).one()
        counted, late_count = counted + stretch_counted, late_count + stretch_late
        rates[days] = None if counted == 0 else late_count / counted
        stretch_end = Message.received_at <= start
    return rates


# --- agents ------------------------------------------------------------------------------------------------


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
    check_window(since, until)
    decided_by = decisions(session, principal, since, until, Draft.decided_by_id)
    tally: dict[int, Counter[str]] = defaultdict(Counter)
    for (agent_id,), kind, count, _ in decided_by.tallies:
        if agent_id is not None:
            tally[agent_id][kind] += count
    names = {
        agent_id: name
        for agent_id, name in session.execute(
            select(Agent.id, Agent.display_name).where(Agent.id.in_(sorted(tally) or [-1]))
        )
    }
    durations: dict[int, list[float]] = defaultdict(list)
    response_seconds = _seconds(session, Message.received_at, Draft.decided_at)
    timing = session.execute(
        scoped(select(Draft.decided_by_id, response_seconds), Draft.conversation_id, principal)
        .join(Message, Message.id == Draft.message_id)
        .where(Draft.decided_at >= since, Draft.decided_at < until, decided_by.sent)
    )
    for agent_id, seconds in timing:
        if agent_id is not None:
            durations[agent_id].append(float(seconds))
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
    check_window(since, until)
    base = select(Conversation, Store.name).join(Store, Store.id == Conversation.store_id).where(visible(principal))
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
        matching = select(Draft.conversation_id).where(decided(since, until))
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

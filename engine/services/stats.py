"""Statistics for leads: volume, response times against Amazon's 24 h clock, per-agent work, draft quality,
the buyer-satisfaction signal and recurring questions, with a drill-down to the conversations behind a number.

Counting happens in SQL (GROUP BY) so a report over 100k conversations stays fast (`evals/bench_scale.py`
measures it); only what SQL cannot do portably on SQLite and PostgreSQL — percentiles, edit distances — is
finished in Python over narrow rows. Draft quality, satisfaction and recurring questions live in
`engine.services.stats_drafts` and are re-exported here.
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

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from engine.db.models import (
    Agent,
    AuditEvent,
    Conversation,
    Draft,
    DraftStatus,
    Message,
    OutboxItem,
    OutboxState,
    Store,
)
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
    draft_quality,
    follow_up_signal,
    outcome,
    recurring_questions,
    satisfaction,
    scoped,
    visible,
)
from engine.workflow.permissions import Principal
from engine.workflow.sla import AMAZON_RESPONSE_WINDOW, late_response_rate, percentile

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
NO_RESPONSE_NEEDED_ACTION = "conversation.no_response_needed"

Pair = tuple[datetime, datetime | None]


# --- shared pieces -----------------------------------------------------------------------------------------


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
    # One pass grouped by all five dimensions, summed per dimension here: the groups are few next to the
    # messages, and five passes over the window's messages cost five times as much.
    dimensions = (
        _day(session, Message.received_at),
        Message.intent,
        Message.language,
        Conversation.marketplace,
        Store.name,
    )
    query = (
        select(*dimensions, func.count(Message.id))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Store, Store.id == Conversation.store_id)
        .where(visible(principal), _buyer_messages(since, until))
        .group_by(*dimensions)
    )
    tallies: list[Counter[str]] = [Counter() for _ in dimensions]
    for *keys, count in session.execute(query):
        for tally, key in zip(tallies, keys, strict=True):
            tally[key or UNKNOWN] += int(count)
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

_BUYER, _REPLY, _CLEARED = 0, 1, 2


def response_pairs_in(session: Session, principal: Principal, since: datetime, until: datetime) -> list[Pair]:
    """(received, answered_at) for each buyer message received in the window that needs a response."""
    # One timeline per conversation — its buyer messages in the window, and every reply (outgoing message or
    # sent outbox item) and "no response needed" from the window's start on — read in one sorted pass: for
    # each buyer message, the earliest reply and clearing at or after it (peers at the same instant included).
    events = union_all(
        select(
            Message.conversation_id.label("conversation_id"), Message.received_at.label("at"), literal(_BUYER)
        ).where(_buyer_messages(since, until), Message.conversation_id.is_not(None)),
        select(Message.conversation_id, Message.received_at, literal(_REPLY)).where(
            Message.direction == "out", Message.received_at >= since
        ),
        select(OutboxItem.conversation_id, OutboxItem.sent_at, literal(_REPLY)).where(
            OutboxItem.state == OutboxState.SENT, OutboxItem.sent_at >= since
        ),
        select(AuditEvent.entity_id, AuditEvent.at, literal(_CLEARED)).where(
            AuditEvent.entity == "conversation",
            AuditEvent.action == NO_RESPONSE_NEEDED_ACTION,
            AuditEvent.at >= since,
        ),
    ).subquery()
    event = events.c[2]
    from_here_on: dict[str, Any] = {
        "partition_by": events.c.conversation_id,
        "order_by": events.c.at,
        "range_": (0, None),
    }
    timeline = select(
        events.c.conversation_id,
        event.label("event"),
        events.c.at,
        func.min(case((event == _REPLY, events.c.at))).over(**from_here_on).label("answered"),
        func.min(case((event == _CLEARED, events.c.at))).over(**from_here_on).label("cleared"),
    ).subquery()
    # A buyer message cleared ("no response needed") before any answer needs no response: drop it here.
    answered, cleared = timeline.c.answered, timeline.c.cleared
    query = scoped(select(timeline.c.at, answered), timeline.c.conversation_id, principal).where(
        timeline.c.event == _BUYER,
        or_(cleared.is_(None), and_(answered.is_not(None), cleared >= answered)),
    )
    pairs: list[Pair] = [(received, answered_at) for received, answered_at in session.execute(query)]
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


def _received_after(pairs: Sequence[Pair], start: datetime) -> Sequence[Pair]:
    """The pairs (sorted by received) received after `start`: what a late rate from `start` on can count."""
    return pairs[bisect_right(pairs, start, key=lambda pair: pair[0]) :]


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
    recent_since = now - timedelta(days=max(LATE_RATE_WINDOWS))
    if since <= now and recent_since <= until:
        # The report's window and the late-rate window overlap (the usual "last 30 days"): read both at once.
        both = response_pairs_in(session, principal, min(since, recent_since), max(until, now))
        pairs = [pair for pair in both if since <= pair[0] < until]
        recent = [pair for pair in both if recent_since <= pair[0] < now]
    else:
        pairs = response_pairs_in(session, principal, since, until)
        recent = response_pairs_in(session, principal, recent_since, now)
    seconds = [(answered - received).total_seconds() for received, answered in pairs if answered is not None]
    return ResponseTimes(
        messages=len(pairs),
        answered=len(seconds),
        median_seconds=percentile(seconds, 50),
        p90_seconds=percentile(seconds, 90),
        sla_hit_rate=on_time_share(pairs, now),
        late_rates={
            days: late_response_rate(_received_after(recent, now - timedelta(days=days)), now, days)
            for days in LATE_RATE_WINDOWS
        },
    )


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
    kind_of = outcome()
    tallied = select(Draft.decided_by_id, Agent.display_name, kind_of, func.count(Draft.id))
    counts = session.execute(
        scoped(tallied, Draft.conversation_id, principal)
        .join(Agent, Agent.id == Draft.decided_by_id)
        .where(decided(since, until))
        .group_by(Draft.decided_by_id, Agent.display_name, kind_of)
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
        scoped(select(Draft.decided_by_id, Message.received_at, Draft.decided_at), Draft.conversation_id, principal)
        .join(Message, Message.id == Draft.message_id)
        .where(decided(since, until), Draft.status != DraftStatus.REJECTED)
    )
    for agent_id, received, decided_at in timing:
        if agent_id is not None and decided_at is not None:
            durations[agent_id].append((decided_at - received).total_seconds())
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

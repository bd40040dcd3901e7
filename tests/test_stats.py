"""Statistics on hand-built data whose numbers are worked out by hand (SQLite and PostgreSQL).

The data (now = 2024-06-10 12:00 UTC, window 2024-06-01 00:00 .. now):

store A, conversation c1 (DE, de):   m0 05-25 10:00 answered by an outgoing message 11:00 (before the window)
                                      m1 06-02 10:00 order_status; draft d1 sent unchanged by X, outbox sent 12:00
                                      m2 06-03 09:00 no_response_needed ("thanks"); marked NRN 09:05
store A, conversation c2 (FR, fr):   m3 06-04 08:00 return_refund; d2 edited ("abcd" -> "abcf") by X,
                                      sent 06-05 14:00 (30 h: late)
                                      m4 06-06 10:00 return_refund again, never answered
store B, conversation c3 (US, en):   m5 06-10 06:00 product_question, unanswered (still inside 24 h);
                                      d3 and d4 rejected by Y, reasons " Wrong tone " and "wrong tone"
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

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
from engine.errors import InputError, PermissionDenied
from engine.services import stats
from engine.services.stats_record import record_answers
from engine.workflow.permissions import Principal, Role
from engine.workflow.sla import late_response_rate, percentile

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)
SINCE = datetime(2024, 6, 1, tzinfo=UTC)
WINDOW: dict[str, Any] = {"since": SINCE, "until": NOW, "now": NOW}
HOUR = 3600.0


def at(day: int, hour: int, minute: int = 0, month: int = 6) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


class World:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.store_a = self.add(Store(name="Store A", marketplaces=["DE", "FR"], allow_list=[]))
        self.store_b = self.add(Store(name="Store B", marketplaces=["US"], allow_list=[]))
        self.x = self.add(Agent(username="x", display_name="Xavier", role=Role.AGENT))
        self.y = self.add(Agent(username="y", display_name="Yuki", role=Role.AGENT))
        self.k1 = self.add(
            KnowledgeItem(question="Where is my parcel?", answer="On its way.", intent="order_status", language="en")
        )
        self.k2 = self.add(
            KnowledgeItem(question="Is it waterproof?", answer="Yes.", intent="product_question", language="en")
        )
        self.c1 = self.conversation(self.store_a, "DE", "de", "c1")
        self.c2 = self.conversation(self.store_a, "FR", "fr", "c2")
        self.c3 = self.conversation(self.store_b, "US", "en", "c3")
        self.message(self.c1, at(25, 10, month=5), "order_status")
        self.message(self.c1, at(25, 11, month=5), None, direction="out", kind="reply")
        m1 = self.message(self.c1, at(2, 10), "order_status")
        self.message(self.c1, at(3, 9), "no_response_needed")
        self.add(
            AuditEvent(
                at=at(3, 9, 5), action="conversation.no_response_needed", entity="conversation", entity_id=self.c1.id
            )
        )
        m3 = self.message(self.c2, at(4, 8), "return_refund")
        self.message(self.c2, at(6, 10), "return_refund")
        m5 = self.message(self.c3, at(10, 6), "product_question")
        d1 = self.draft(
            self.c1,
            m1,
            "order_status",
            "de",
            "Hallo",
            "Hallo",
            DraftStatus.APPROVED,
            self.x,
            at(2, 12),
            template="order_status.de",
            sources=[self.k1.id],
        )
        d2 = self.draft(
            self.c2,
            m3,
            "return_refund",
            "fr",
            "abcd",
            "abcf",
            DraftStatus.EDITED,
            self.x,
            at(5, 14),
            template="return_refund.fr",
            sources=[self.k1.id],
        )
        self.draft(
            self.c3,
            m5,
            "product_question",
            "en",
            "No.",
            None,
            DraftStatus.REJECTED,
            self.y,
            at(10, 7),
            sources=[self.k2.id],
            reason=" Wrong tone ",
        )
        self.draft(
            self.c3,
            m5,
            "product_question",
            "en",
            "Nope.",
            None,
            DraftStatus.REJECTED,
            self.y,
            at(10, 8),
            reason="wrong tone",
        )
        self.outbox(d1, at(2, 12))
        self.outbox(d2, at(5, 14))
        # What the app records as replies go out and conversations are cleared (rows here are written directly).
        record_answers(session, [self.c1.id, self.c2.id, self.c3.id])

    def add(self, row: Any) -> Any:
        self.session.add(row)
        self.session.flush()
        return row

    def conversation(self, store: Store, marketplace: str, language: str, key: str) -> Conversation:
        return self.add(
            Conversation(
                store_id=store.id,
                thread_key=key,
                marketplace=marketplace,
                language=language,
                buyer_address=f"{key}@marketplace.amazon.example",
                subject=f"About {key}",
                last_message_at=NOW,
            )
        )

    def message(
        self,
        conversation: Conversation,
        received: datetime,
        intent: str | None,
        *,
        direction: str = "in",
        kind: str = "buyer_message",
    ) -> Message:
        return self.add(
            Message(
                store_id=conversation.store_id,
                conversation_id=conversation.id,
                direction=direction,
                kind=kind,
                dedupe_key=f"{conversation.id}-{received.isoformat()}",
                body="...",
                received_at=received,
                intent=intent,
                language=conversation.language,
            )
        )

    def draft(
        self,
        conversation: Conversation,
        message: Message,
        intent: str,
        language: str,
        text: str,
        final: str | None,
        status: DraftStatus,
        agent: Agent,
        decided: datetime,
        *,
        template: str | None = None,
        sources: Sequence[int] = (),
        reason: str | None = None,
    ) -> Draft:
        return self.add(
            Draft(
                conversation_id=conversation.id,
                message_id=message.id,
                status=status,
                text=text,
                final_text=final,
                intent=intent,
                language=language,
                drafter="default",
                template_id=template,
                sources=[{"kind": "knowledge", "id": i} for i in sources],
                reject_reason=reason,
                decided_by_id=agent.id,
                decided_at=decided,
                created_at=decided - timedelta(minutes=30),
                verdict={},
                allowed=True,
            )
        )

    def outbox(self, draft: Draft, sent: datetime) -> OutboxItem:
        conversation = self.session.get_one(Conversation, draft.conversation_id)
        return self.add(
            OutboxItem(
                draft_id=draft.id,
                conversation_id=conversation.id,
                store_id=conversation.store_id,
                state=OutboxState.SENT,
                message_id=f"<d{draft.id}@test>",
                from_address="s@x.example",
                to_address=conversation.buyer_address,
                subject="Re",
                body=draft.final_text or "",
                sent_at=sent,
            )
        )


@pytest.fixture
def world(session: Session) -> World:
    return World(session)


def admin() -> Principal:
    return Principal(agent_id=1, role=Role.ADMIN, store_ids=frozenset())


def lead_of(store: Store) -> Principal:
    return Principal(agent_id=1, role=Role.LEAD, store_ids=frozenset({store.id}))


def test_volume_by_day_intent_language_marketplace_and_store(world: World) -> None:
    volume = stats.volume(world.session, admin(), **WINDOW)
    assert volume.total == 5
    assert volume.by_day == [
        ("2024-06-02", 1),
        ("2024-06-03", 1),
        ("2024-06-04", 1),
        ("2024-06-06", 1),
        ("2024-06-10", 1),
    ]
    assert volume.by_intent == {"return_refund": 2, "order_status": 1, "no_response_needed": 1, "product_question": 1}
    assert volume.by_language == {"de": 2, "fr": 2, "en": 1}
    assert volume.by_marketplace == {"DE": 2, "FR": 2, "US": 1}
    assert volume.by_store == {"Store A": 4, "Store B": 1}


def test_a_lead_sees_only_their_stores(world: World) -> None:
    volume = stats.volume(world.session, lead_of(world.store_b), **WINDOW)
    assert (volume.total, volume.by_store) == (1, {"Store B": 1})
    assert [row.name for row in stats.agents(world.session, lead_of(world.store_a), **WINDOW)] == ["Xavier"]


def test_response_times_and_late_rates(world: World) -> None:
    times = stats.response_times(world.session, admin(), **WINDOW)
    # m1 (2 h), m3 (30 h), m4 (unanswered, due), m5 (not due yet); m2 was cleared by "no response needed".
    assert (times.messages, times.answered) == (4, 2)
    assert times.median_seconds == pytest.approx(16 * HOUR)
    assert times.p90_seconds == pytest.approx(2 * HOUR + 0.9 * 28 * HOUR)
    assert times.sla_hit_rate == pytest.approx(1 / 3)
    # 7 days: m3 and m4, both late. 30/90 days: m0 and m1 on time as well.
    assert times.late_rates == {7: 1.0, 30: 0.5, 90: 0.5}


# Buyer messages on the edges of the late-rate windows and the 24 h limit, answered (hours later) or not; the
# SQL counts must agree with the reference rules in Python (`on_time_share`, `late_response_rate`).
EDGES: list[tuple[timedelta, timedelta | None]] = [
    (timedelta(days=7), timedelta(hours=1)),  # exactly on the 7-day start: counts for 30 and 90 days only
    (timedelta(days=7, milliseconds=-1), timedelta(hours=25)),
    (timedelta(days=30), None),
    (timedelta(days=30, milliseconds=-1), timedelta(hours=24)),  # exactly 24 h: on time
    (timedelta(days=90), timedelta(hours=2)),
    (timedelta(days=89), timedelta(hours=24, milliseconds=1)),  # a millisecond over: late
    (timedelta(hours=24), None),  # unanswered for exactly 24 h: not late yet
    (timedelta(hours=24, milliseconds=1), None),  # now it is
    (timedelta(hours=3), timedelta(hours=1)),
    (timedelta(hours=1), timedelta(hours=2)),  # answered after `now`: not known yet, and not due
    (timedelta(0), None),  # received at `now`: outside every window
]


def test_response_counts_agree_with_the_reference_rules_on_the_edges(session: Session) -> None:
    world = World(session)
    conversation = world.conversation(world.store_b, "US", "en", "edges")
    for age, answered_after in EDGES:
        message = world.message(conversation, NOW - age, "order_status")
        if answered_after is not None:
            message.answered_at = message.received_at + answered_after
    session.flush()
    times = stats.response_times(session, admin(), **WINDOW)
    # 7 days: m3, m4 and the 7-day-minus-a-millisecond and 24-h-plus-a-millisecond edges late, of 5 due; 30 days
    # adds m0, m1 and two on-time edges; 90 days adds two late ones (unanswered since day 30, 24 h + 1 ms).
    assert times.late_rates == {7: pytest.approx(4 / 5), 30: pytest.approx(4 / 9), 90: pytest.approx(6 / 11)}
    recent = stats.response_pairs_in(session, admin(), NOW - timedelta(days=90), NOW)
    assert times.late_rates == {days: late_response_rate(recent, NOW, days) for days in stats.LATE_RATE_WINDOWS}
    in_window = stats.response_pairs_in(session, admin(), SINCE, NOW)
    assert times.sla_hit_rate == pytest.approx(stats.on_time_share(in_window, NOW))
    answered = sorted((a - r).total_seconds() for r, a in in_window if a is not None)
    assert (times.messages, times.answered) == (len(in_window), len(answered))
    assert times.median_seconds == pytest.approx(percentile(answered, 50))


def test_per_agent_counts_and_response_time(world: World) -> None:
    rows = {row.name: row for row in stats.agents(world.session, admin(), **WINDOW)}
    assert (rows["Xavier"].handled, rows["Xavier"].sent, rows["Xavier"].rejected) == (2, 2, 0)
    assert rows["Xavier"].median_response_seconds == pytest.approx(16 * HOUR)
    assert (rows["Yuki"].handled, rows["Yuki"].sent, rows["Yuki"].rejected) == (2, 0, 2)
    assert rows["Yuki"].median_response_seconds is None


def test_draft_acceptance_edit_distance_and_rejection_reasons(world: World) -> None:
    quality = stats.draft_quality(world.session, admin(), **WINDOW)
    overall = quality.overall
    assert (overall.unchanged, overall.edited, overall.rejected) == (1, 1, 2)
    assert overall.acceptance_rate == pytest.approx(0.25)
    assert overall.mean_edit_distance == pytest.approx(0.125)  # "abcd" -> "abcf" is 0.25; unchanged is 0
    by_intent = {row.key: row for row in quality.by_intent}
    assert (by_intent["return_refund"].edited, by_intent["return_refund"].mean_edit_distance) == (1, 0.25)
    assert by_intent["product_question"].rejected == 2
    assert by_intent["product_question"].mean_edit_distance is None
    assert {row.key: row.total for row in quality.by_template} == {
        "unknown": 2,
        "order_status.de": 1,
        "return_refund.fr": 1,
    }
    assert [(row.key, row.total) for row in quality.by_drafter] == [("default", 4)]
    assert quality.rejection_reasons == [("wrong tone", 2)]


def test_draft_quality_reads_the_recorded_edit_distance(world: World) -> None:
    """A distance recorded when the reply was queued is what counts; the texts are diffed only for drafts sent
    without one (the rows above)."""
    sent = world.session.scalars(select(Draft).where(Draft.final_text.is_not(None)).order_by(Draft.id)).all()
    sent[0].edit_distance, sent[1].edit_distance = 0.0, 0.5  # d2 recorded at 0.5, though its texts say 0.25
    world.session.flush()
    quality = stats.draft_quality(world.session, admin(), **WINDOW)
    assert (quality.overall.unchanged, quality.overall.edited, quality.overall.rejected) == (1, 1, 2)
    assert quality.overall.mean_edit_distance == pytest.approx(0.25)
    assert {row.key: row.mean_edit_distance for row in quality.by_intent}["return_refund"] == pytest.approx(0.5)
    rows = {row.name: row for row in stats.agents(world.session, admin(), **WINDOW)}
    assert (rows["Xavier"].sent, rows["Xavier"].median_response_seconds) == (2, pytest.approx(16 * HOUR))


def test_satisfaction_signal(world: World) -> None:
    signal = stats.satisfaction(world.session, admin(), **WINDOW)
    # d1's reply was followed by thanks (positive); d2's by the same question again (negative).
    assert (signal.replies, signal.positive, signal.negative, signal.neutral, signal.no_follow_up) == (2, 1, 1, 0, 0)
    assert signal.positive_share == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("answered", "following", "has_next", "expected"),
    [
        ("order_status", "no_response_needed", True, "positive"),
        ("order_status", "complaint_feedback", True, "negative"),
        ("order_status", "order_status", True, "negative"),
        ("order_status", "return_refund", True, "neutral"),
        ("order_status", None, True, "neutral"),
        ("order_status", None, False, "none"),
    ],
)
def test_follow_up_signal(answered: str, following: str | None, has_next: bool, expected: str) -> None:
    assert stats.follow_up_signal(answered, following, has_next) == expected


def test_recurring_questions(world: World) -> None:
    top = stats.recurring_questions(world.session, admin(), **WINDOW)
    assert [(q.question, q.drafts) for q in top] == [("Where is my parcel?", 2), ("Is it waterproof?", 1)]


@pytest.mark.parametrize(
    ("dimension", "value", "expected"),
    [
        ("intent", "return_refund", ["c2"]),
        ("store", "Store B", ["c3"]),
        ("day", "2024-06-02", ["c1"]),
        ("marketplace", "DE", ["c1"]),
        ("template", "unknown", ["c3"]),
        ("rejection_reason", "wrong tone", ["c3"]),
    ],
)
def test_drill_down_to_conversations(world: World, dimension: str, value: str, expected: list[str]) -> None:
    refs = stats.conversations_for(world.session, admin(), dimension=dimension, value=value, **WINDOW)
    assert [ref.subject.removeprefix("About ") for ref in refs] == expected


def test_drill_down_respects_stores_and_dimensions(world: World) -> None:
    session = world.session
    assert stats.conversations_for(session, lead_of(world.store_a), dimension="store", value="Store B", **WINDOW) == []
    with pytest.raises(InputError, match="Cannot drill down"):
        stats.conversations_for(session, admin(), dimension="colour", value="red", **WINDOW)


def test_agents_may_not_see_statistics(world: World) -> None:
    agent = Principal(agent_id=1, role=Role.AGENT, store_ids=frozenset({world.store_a.id}))
    with pytest.raises(PermissionDenied):
        stats.volume(world.session, agent, **WINDOW)


def test_empty_window_and_reversed_window(world: World) -> None:
    empty: dict[str, Any] = {"since": at(1, 0, month=1), "until": at(2, 0, month=1), "now": NOW}
    assert stats.volume(world.session, admin(), **empty).total == 0
    assert stats.draft_quality(world.session, admin(), **empty).overall.acceptance_rate is None
    with pytest.raises(InputError):
        stats.volume(world.session, admin(), since=NOW, until=SINCE, now=NOW)


def test_day_range_includes_partial_last_day() -> None:
    assert stats.day_range(at(1, 0), at(3, 12)) == ["2024-06-01", "2024-06-02", "2024-06-03"]
    assert stats.day_range(at(1, 0), at(3, 0)) == ["2024-06-01", "2024-06-02"]

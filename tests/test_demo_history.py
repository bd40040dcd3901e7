"""The demo's thirty days of history: planned deterministically, written the way live work writes it, and
enough for every statistic to show real figures on a first run, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.compliance import check_outgoing
from engine.db import Database
from engine.db.models import (
    AuditEvent,
    Conversation,
    ConversationStatus,
    Draft,
    DraftStatus,
    Message,
    OutboxItem,
    OutboxState,
)
from engine.demo import HISTORY_DAYS, HISTORY_FILE, HistoryEntry, load_history, plan_history, read_history
from engine.demo.history import SOURCE
from engine.demo.plan import HISTORY_END, TeamMember
from engine.errors import InputError
from engine.services import stats
from engine.services.agents import NewPassword, create_agent
from engine.services.health import health
from engine.services.pipeline import pending_messages
from engine.services.stats_record import record_answers, sent_edit_distance
from engine.services.stores import ensure_store
from engine.settings import Settings
from engine.setup import DEMO_STORES, DEMO_USERS, REGION_OF, load_demo
from engine.taxonomy import MARKETPLACES
from engine.workflow.permissions import Principal, Role
from engine.workflow.sla import AMAZON_RESPONSE_WINDOW, SlaState, sla_state
from evals.databases import BACKENDS

REPO_ROOT = Path(__file__).resolve().parent.parent
HISTORY = REPO_ROOT / "knowledge" / "demo" / HISTORY_FILE
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
ADMIN = Principal(agent_id=0, role=Role.ADMIN, store_ids=frozenset())
STORES = {code: 1 if code in ("US", "CA", "MX", "BR") else 3 if code == "JP" else 2 for code in MARKETPLACES}
TEAM = [
    TeamMember(1, Role.ADMIN, ("en", "de"), frozenset({1, 2, 3})),
    TeamMember(2, Role.LEAD, ("en", "fr", "es"), frozenset({1, 2, 3})),
    TeamMember(3, Role.AGENT, ("en", "de", "it"), frozenset({2})),
    TeamMember(4, Role.AGENT, ("en", "ja", "zh"), frozenset({1, 2, 3})),
]


# --- the file and the plan (pure) --------------------------------------------------------------------------


def test_history_file_covers_the_stores_languages_and_intents() -> None:
    entries = read_history(HISTORY)
    assert len(entries) >= 30
    assert {e.marketplace for e in entries} >= {"US", "UK", "DE", "FR", "ES", "IT", "JP"}
    assert len({e.language for e in entries}) >= 8
    assert len({e.intent for e in entries}) >= 10
    assert all("Demo" in name for name, _ in DEMO_STORES.values())  # the stores the history is written into


def test_every_reply_in_the_file_passes_the_compliance_check() -> None:
    for entry in read_history(HISTORY):
        for text in filter(None, (entry.draft, entry.edited)):
            verdict = check_outgoing(text.replace("{order}", "028-1234567-1234567"), buyer_language=entry.language)
            assert verdict.allowed, (entry.subject, verdict.violations)


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("not json", "not valid JSON"),
        ('{"marketplace": "XX", "language": "en", "intent": "other", "subject": "s", "buyer": "b"}', "marketplace"),
        ('{"marketplace": "US", "language": "en", "intent": "other", "subject": "s", "buyer": "b"}', "'draft'"),
        ('{"marketplace": "US", "language": "en", "intent": "other"}', "missing"),
        ('{"marketplace": "US", "language": "en", "intent": "other", "subject": "s", "buyer": 5}', "string"),
    ],
)
def test_a_bad_history_line_is_refused_with_what_to_fix(tmp_path: Path, line: str, complaint: str) -> None:
    path = tmp_path / HISTORY_FILE
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=complaint):
        read_history(path)


def test_a_missing_history_file_says_where_it_belongs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"knowledge/demo/{HISTORY_FILE}"):
        read_history(tmp_path / HISTORY_FILE)


def test_the_plan_is_deterministic_and_in_the_past() -> None:
    entries = read_history(HISTORY)
    plan = plan_history(entries, STORES, TEAM, now=NOW)
    assert plan == plan_history(entries, STORES, TEAM, now=NOW)
    assert plan != plan_history(entries, STORES, TEAM, now=NOW, seed=15)
    assert 150 <= len(plan) <= 400
    assert all(NOW - timedelta(days=HISTORY_DAYS + 2) < p.received < NOW - HISTORY_END for p in plan)
    replies = [reply for p in plan for reply in p.replies]
    assert all(r.decided_at < r.sent_at < NOW for r in replies)
    exchanges = [exchange for p in plan for exchange in p.exchanges]
    assert all(e.cleared_at < NOW for e in exchanges if e.cleared_at)
    assert all(p.closed_at < NOW for p in plan if p.closed_at)
    threads = [p.exchanges for p in plan if len(p.exchanges) > 1]
    assert any(t[1].reply is None for t in threads)  # thanked for
    assert any(t[1].reply and t[1].entry.intent == t[0].entry.intent for t in threads)  # asked again
    assert all(t[0].reply and t[0].reply.sent_at < t[1].received for t in threads)
    waits = [e.reply.sent_at - e.received for e in exchanges if e.reply]
    late = sum(wait > AMAZON_RESPONSE_WINDOW for wait in waits)
    assert 0 < late < len(waits) * 0.1  # a good team: late now and then, not often
    assert sum(1 for r in replies if r.rejected) > 0 and sum(1 for r in replies if r.blocked) > 0
    assert sum(1 for r in replies if r.final != r.drafted) > 0


def test_each_conversation_goes_to_someone_allowed_on_its_store() -> None:
    plan = plan_history(read_history(HISTORY), STORES, TEAM, now=NOW)
    members = {member.id: member for member in TEAM}
    assert all(p.store_id in members[p.agent_id].store_ids for p in plan)
    assert len({p.agent_id for p in plan}) == len(TEAM)


def test_entries_of_marketplaces_without_a_store_are_left_out() -> None:
    entries = [replace(e, marketplace="AE") for e in read_history(HISTORY)[:3]]
    german = HistoryEntry("DE", "de", "no_response_needed", "Danke", "Danke!")
    plan = plan_history([*entries, german], {"DE": 2}, TEAM, now=NOW)
    assert plan and all(p.entry is german for p in plan)
    assert plan_history(entries, {"DE": 2}, TEAM, now=NOW) == []


# --- written to the database -------------------------------------------------------------------------------


def _demo_team(session: Session) -> None:
    """The demo's stores and accounts, as `load_demo` creates them (one password hash for all: speed)."""
    password = NewPassword.of("demo-password")
    stores = {}
    for region, (name, sender) in DEMO_STORES.items():
        markets = [code for code in MARKETPLACES if REGION_OF.get(code, "eu") == region]
        stores[region] = ensure_store(session, name, region=region, marketplaces=markets, sender_address=sender)
    for username, _, role, display, languages in DEMO_USERS:
        assigned = list(stores.values()) if username != "agent" else [stores["eu"]]
        create_agent(
            session, username, password=password, role=role, display_name=display, stores=assigned, languages=languages
        )
    session.flush()


def _snapshot(session: Session) -> list[tuple[Any, ...]]:
    """The history's rows without their ids (a second run in one database gets other ids)."""
    rows: list[tuple[Any, ...]] = []
    for c in session.scalars(
        select(Conversation).where(Conversation.thread_key.like(f"{SOURCE}:%")).order_by(Conversation.id)
    ):
        rows.append(
            (c.thread_key, c.marketplace, c.buyer_address, c.order_id, c.status, c.intent, c.tags, c.last_message_at)
        )
        for m in c.messages:
            rows.append(
                (m.direction, m.kind, m.body, m.received_at, m.answered_at, m.cleared_at, m.intent, m.intent_score)
            )
        for d in c.drafts:
            rows.append((d.status, d.text, d.final_text, d.decided_at, d.edit_distance, d.allowed, d.reject_reason))
    return rows


def test_two_runs_with_the_same_now_write_the_same_rows(session: Session) -> None:
    _demo_team(session)
    entries = read_history(HISTORY)
    first = session.begin_nested()
    summary = load_history(session, entries, now=NOW)
    rows = _snapshot(session)
    first.rollback()
    session.expunge_all()  # SQLite hands the rolled-back ids out again
    assert _snapshot(session) == []
    again = load_history(session, entries, now=NOW)
    assert summary == again and summary.conversations > 100
    assert _snapshot(session) == rows


def test_history_is_recorded_the_way_live_work_records_it(session: Session) -> None:
    _demo_team(session)
    summary = load_history(session, read_history(HISTORY), now=NOW)
    assert summary.replies > 100 and summary.rejected and summary.blocked and summary.no_response_needed
    ids = list(session.scalars(select(Conversation.id).where(Conversation.thread_key.like(f"{SOURCE}:%"))))
    assert len(ids) == summary.conversations
    recorded = session.execute(select(Message.id, Message.answered_at, Message.cleared_at)).all()
    record_answers(session, ids)  # what the live services would record for these threads changes nothing
    session.flush()
    assert session.execute(select(Message.id, Message.answered_at, Message.cleared_at)).all() == recorded
    sent = session.scalars(select(Draft).where(Draft.status == DraftStatus.SENT)).all()
    assert len(sent) == summary.replies
    for draft in sent:
        assert draft.final_text and draft.edit_distance == sent_edit_distance(draft.text, draft.final_text)
        assert check_outgoing(draft.final_text, buyer_language=draft.language).allowed
    blocked = session.scalars(select(Draft).where(Draft.allowed.is_(False))).all()
    assert blocked and all(d.status == DraftStatus.REJECTED and d.verdict["violations"] for d in blocked)
    items = session.scalars(select(OutboxItem)).all()
    assert {item.state for item in items} == {OutboxState.SENT} and len(items) == summary.replies
    assert session.scalar(select(Draft.id).where(Draft.status == DraftStatus.PENDING)) is None
    assert not [m for m in pending_messages(session) if m.source == SOURCE]  # the pipeline leaves them alone
    cleared = session.scalars(select(AuditEvent).where(AuditEvent.action == "conversation.no_response_needed")).all()
    assert len(cleared) == summary.no_response_needed and all(event.at < NOW for event in cleared)
    statuses = set(session.scalars(select(Conversation.status).where(Conversation.id.in_(ids))))
    assert statuses == {ConversationStatus.WAITING, ConversationStatus.CLOSED, ConversationStatus.NO_RESPONSE_NEEDED}


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_first_demo_run_shows_a_team_at_work(fresh_database: Database, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, knowledge_dir=REPO_ROOT / "knowledge", nlp_backend="fake")
    lines = list(load_demo(fresh_database, settings))
    assert lines[-1].startswith("demo history: ")
    now = datetime.now(UTC)
    window = {"since": now - timedelta(days=30), "until": now + timedelta(minutes=1), "now": now}
    with fresh_database.read() as session:
        times = stats.response_times(session, ADMIN, **window)
        quality = stats.draft_quality(session, ADMIN, **window)
        team = stats.agents(session, ADMIN, **window)
        volume = stats.volume(session, ADMIN, **window)
        happiness = stats.satisfaction(session, ADMIN, **window)
        board = health(session, ADMIN, now=now)
        deadlines = session.scalars(
            select(Conversation.amazon_deadline).where(Conversation.status == ConversationStatus.OPEN)
        ).all()
    assert times.answered > 100 and times.median_seconds
    assert times.sla_hit_rate is not None and 0.8 < times.sla_hit_rate < 1
    assert times.late_rates[30] is not None and 0 < times.late_rates[30] < 0.2
    assert quality.overall.unchanged > 50 and quality.overall.edited > 10 and quality.overall.rejected > 3
    assert quality.overall.mean_edit_distance and quality.rejection_reasons
    assert len(quality.by_language) >= 8 and len(quality.by_template) >= 20
    assert {row.name for row in team} >= {"Lee Lead", "Mia Agent", "王芳"}
    assert len(volume.by_store) == 3 and len(volume.by_day) >= 28
    assert happiness.positive > 10 and happiness.negative > 0 and happiness.neutral > 0
    assert board.outbox.get(OutboxState.SENT, 0) > 100
    states = {sla_state(deadline, now) for deadline in deadlines}
    assert {SlaState.OK, SlaState.AT_RISK, SlaState.OVERDUE} <= states


def test_a_first_run_shows_answered_figures_and_three_sla_states_in_the_app(app_env: Database) -> None:
    """The pages as a newcomer sees them (AppTest; `test_demo_history_browser.py` does it in Chromium)."""
    from tests.test_app_pages import signed_in

    at = signed_in("lead", "demo-lead")
    times_left = [
        m.value for m in at.markdown if re.fullmatch(r"(:\w+\[\*\*)?(overdue by )?[\d dhmin]+(\*\*\])?", m.value)
    ]
    assert any(t.startswith(":red[**overdue by") for t in times_left), times_left
    assert any(t.startswith(":orange[**") for t in times_left), times_left
    assert any(not t.startswith(":") for t in times_left), times_left
    at.switch_page("app_pages/statistics.py").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    answered = metrics["Answered within 24 h"]
    assert answered not in ("—", "0.0 %") and float(re.sub(r"[^\d.]", "", answered)) > 50, metrics
    assert metrics["First response, median"] != "—"
    assert float(re.sub(r"[^\d.]", "", metrics["Late-response rate, 30 days"])) < 50, metrics
    assert metrics["Drafts sent unchanged"] != "—"

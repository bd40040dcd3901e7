"""The scale benchmark at a tiny size on both backends: it loads what it says and measures every page."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from engine.db import Database
from engine.db.models import Conversation, Draft, Message
from engine.services.stats_record import record_answers, sent_edit_distance
from evals.bench_scale import bench_scale, table_rows, target_for
from evals.bench_scale_data import load
from tests.conftest import BACKENDS

CONVERSATIONS = 300
EXPECTED_MEASURES = {
    "queue first page, admin",
    "queue filtered page, admin",
    "queue page 20, admin",
    "queue first page, one-store agent",
    "queue filtered page, one-store agent",
    "queue page 20, one-store agent",
    "statistics page, 30 days, admin",
    "conversation page",
}


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return bench_scale(CONVERSATIONS, backends=BACKENDS, repeats={"queue": 2, "statistics": 1, "conversation": 2})


@pytest.mark.parametrize("backend", BACKENDS)
def test_loads_the_generated_rows(results: dict[str, Any], backend: str) -> None:
    data = results[backend]
    assert data["stored"] == data["generated"]
    assert data["stored"]["conversation"] == CONVERSATIONS
    assert data["stored"]["message"] == CONVERSATIONS * 3
    assert 0 < data["stored"]["outbox_item"] < data["stored"]["draft"] < CONVERSATIONS


@pytest.mark.parametrize("backend", BACKENDS)
def test_measures_every_page(results: dict[str, Any], backend: str) -> None:
    measures = results[backend]["measures"]
    assert set(measures) == EXPECTED_MEASURES
    for timing in measures.values():
        assert timing["p50_ms"] > 0 and timing["p95_ms"] >= timing["p50_ms"] and timing["runs"] > 0


def test_table_has_a_row_per_measure_and_load(results: dict[str, Any]) -> None:
    rows = table_rows(results)
    assert len(rows) == len(BACKENDS) * (len(EXPECTED_MEASURES) + 1)
    assert all(result.endswith(("ms p95", " s")) for _, result, _ in rows)


@pytest.mark.parametrize(
    ("measure", "limit"),
    [("queue page 20, admin", 200.0), ("statistics page, 30 days, admin", 2000.0), ("conversation page", 300.0)],
)
def test_targets(measure: str, limit: float) -> None:
    assert target_for(measure) == limit


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_generated_rows_carry_what_the_app_records(fresh_database: Database) -> None:
    """The bulk-inserted rows hold the answers and edit distances the app's recorder would have set."""
    load(fresh_database, 120, 3)
    with fresh_database.transaction() as session:
        messages = session.scalars(select(Message).where(Message.direction == "in")).all()
        generated = {m.id: (m.answered_at, m.cleared_at) for m in messages}
        assert any(answered for answered, _ in generated.values()) and any(c for _, c in generated.values())
        record_answers(session, session.scalars(select(Conversation.id)))
        assert {m.id: (m.answered_at, m.cleared_at) for m in messages} == generated
        for draft in session.scalars(select(Draft)):
            expected = None if draft.final_text is None else sent_edit_distance(draft.text, draft.final_text)
            assert draft.edit_distance == (None if expected is None else pytest.approx(expected))

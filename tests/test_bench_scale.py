"""The scale benchmark at a tiny size on both backends: it loads what it says and measures every page."""

from __future__ import annotations

from typing import Any

import pytest

from evals.bench_scale import bench_scale, table_rows, target_for
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

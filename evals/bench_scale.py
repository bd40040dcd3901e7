"""Database latency at scale: the queue, statistics and conversation pages' queries over 100,000 conversations
(300,000 messages) in SQLite and PostgreSQL.

    python -m evals.bench_scale [conversations]      # prints a Markdown table

The data (`evals.bench_scale_data`) is synthetic but shaped like a busy seller's, and loaded into a
throwaway database per backend.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from engine.db import Database
from engine.db.models import AuditEvent, Conversation, Draft, Message, OutboxItem
from engine.services import stats
from engine.services.queue import QueueFilters, list_queue
from engine.ui.snapshots import conversation_snapshot
from engine.workflow.permissions import Principal
from evals.bench_scale_data import NOW, SEED, Principals, load
from evals.databases import throwaway_database

__all__ = ["NOW", "bench_scale", "load", "measure", "statistics_page", "table_rows", "target_for"]

REPEATS = {"queue": 15, "statistics": 3, "conversation": 40}


def _timings(repeats: int, action: Callable[[int], Any]) -> dict[str, float]:
    action(-1)  # warm-up: statement compilation and a cold cache are not what a page sees all day
    samples = []
    for i in range(repeats):
        started = time.perf_counter()
        action(i)
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(samples), "p95_ms": float(np.percentile(samples, 95)), "runs": repeats}


def statistics_page(session: Any, principal: Principal, since: datetime, until: datetime) -> None:
    """What the statistics page loads (`app_pages/statistics.py`)."""
    window: dict[str, Any] = {"since": since, "until": until, "now": until}
    stats.volume(session, principal, **window)
    stats.response_times(session, principal, **window)
    stats.agents(session, principal, **window)
    stats.draft_quality(session, principal, **window)
    stats.satisfaction(session, principal, **window)
    stats.recurring_questions(session, principal, **window)


def measure(db: Database, principals: Principals, conversations: int, repeats: dict[str, int]) -> dict[str, Any]:
    rng = random.Random(SEED + 1)
    results: dict[str, Any] = {}
    queue_cases = {
        "first page": (QueueFilters(), 1),
        "filtered page": (QueueFilters(marketplaces=("DE", "US", "JP"), languages=("de", "en", "ja")), 1),
        "page 20": (QueueFilters(), 20),
    }
    for who, principal in (("admin", principals.admin), ("one-store agent", principals.one_store_agent)):
        for case, (filters, page) in queue_cases.items():

            def queue(
                _: int, principal: Principal = principal, filters: QueueFilters = filters, page: int = page
            ) -> None:
                with db.transaction() as session:
                    list_queue(session, principal, filters, page=page, page_size=50, now=NOW)

            results[f"queue {case}, {who}"] = _timings(repeats["queue"], queue)

    def statistics_run(_: int) -> None:
        with db.transaction() as session:
            statistics_page(session, principals.admin, NOW - timedelta(days=30), NOW)

    results["statistics page, 30 days, admin"] = _timings(repeats["statistics"], statistics_run)
    ids = [rng.randint(1, conversations) for _ in range(repeats["conversation"] + 1)]

    def snapshot(i: int) -> None:
        with db.transaction() as session:
            conversation_snapshot(session, principals.admin, ids[i])

    results["conversation page"] = _timings(repeats["conversation"], snapshot)
    return results


def bench_scale(
    conversations: int = 100_000,
    messages_per_conversation: int = 3,
    backends: Sequence[str] = ("sqlite", "postgresql"),
    repeats: dict[str, int] | None = None,
) -> dict[str, Any]:
    """p50/p95 milliseconds of the queue, statistics and conversation pages' queries, per backend."""
    if conversations < 1 or messages_per_conversation < 1:
        raise ValueError("bench_scale needs at least one conversation with at least one message")
    results: dict[str, Any] = {"conversations": conversations, "messages_per_conversation": messages_per_conversation}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for backend in backends:
            with throwaway_database(backend, Path(tmp)) as db:
                started = time.perf_counter()
                principals = load(db, conversations, messages_per_conversation)
                load_s = time.perf_counter() - started
                with db.engine.connect() as connection:
                    stored = {
                        name: int(connection.scalar(select(func.count()).select_from(table)) or 0)
                        for name, table in (
                            ("conversation", Conversation),
                            ("message", Message),
                            ("draft", Draft),
                            ("outbox_item", OutboxItem),
                            ("audit_event", AuditEvent),
                        )
                    }
                results[backend] = {
                    "load_s": load_s,
                    "generated": principals.counts,
                    "stored": stored,
                    "measures": measure(db, principals, conversations, repeats or REPEATS),
                }
    return results


TARGETS_MS = {"queue": 200.0, "statistics": 2000.0, "conversation": 300.0}


def target_for(measure_name: str) -> float:
    return next(limit for prefix, limit in TARGETS_MS.items() if measure_name.startswith(prefix))


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, result, notes) rows for `evals.bench`'s Markdown table."""
    rows = []
    size = f"{results['conversations']:,} conversations"
    for backend in ("sqlite", "postgresql"):
        if backend not in results:
            continue
        data = results[backend]
        rows.append((f"Load {size} ({backend})", f"{data['load_s']:.1f} s", f"{data['stored']['message']:,} messages"))
        for name, timing in data["measures"].items():
            limit = target_for(name)
            verdict = "ok" if timing["p95_ms"] <= limit else "ABOVE TARGET"
            rows.append(
                (
                    f"{name} ({backend})",
                    f"{timing['p95_ms']:.0f} ms p95",
                    f"p50 {timing['p50_ms']:.0f} ms, {timing['runs']} runs; target {limit:.0f} ms: {verdict}",
                )
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    conversations = int(args[0]) if args else 100_000
    from evals.bench import markdown_table

    print(markdown_table(table_rows(bench_scale(conversations))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Stored eval runs for the Evals page, behind the leads' permission (checked here, not only in the page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.workflow.permissions import Action, Principal, require
from evals import runs_index
from evals.runs_index import MetricDelta, RunSummary


def eval_runs(principal: Principal) -> list[RunSummary]:
    require(principal, Action.RUN_EVALS)
    return runs_index.list_runs()


def compare(principal: Principal, before: RunSummary, after: RunSummary) -> list[MetricDelta]:
    require(principal, Action.RUN_EVALS)
    return runs_index.compare_runs(runs_index.load_run(before.path), runs_index.load_run(after.path))


def report(principal: Principal, run: RunSummary) -> str:
    """The run's HTML report; the page renders it with no script execution."""
    require(principal, Action.RUN_EVALS)
    return runs_index.report_html(Path(run.path))


def delta_rows(deltas: list[MetricDelta], *, changed_only: bool) -> list[dict[str, Any]]:
    return runs_index.delta_rows(deltas, changed_only=changed_only)

"""Stored eval runs (``evals/runs/*/run.json``): list them and compare two, metric by metric.

The logic behind the Streamlit Evals page; pure apart from reading the run folders.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.gate import tracking_rule
from evals.report import REPORT_FILE, RUN_FILE, RUNS_DIR

SAME = 1e-9


@dataclass(frozen=True)
class RunSummary:
    path: Path
    created_at: str
    suite: str
    profile: str
    gate: str  # passed, FAILED, or "" when the run was not compared
    metrics: int

    @property
    def label(self) -> str:
        gate = f" · gate {self.gate}" if self.gate else ""
        return f"{self.created_at} · {self.suite} · {self.profile}{gate}"


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    before: float | None
    after: float | None
    verdict: str  # better, worse, same, new, gone, changed (direction unknown)

    @property
    def delta(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before


def load_run(path: Path) -> dict[str, Any]:
    """A run document from its folder or its ``run.json``."""
    file = path / RUN_FILE if path.is_dir() else path
    data = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "metrics" not in data:
        raise ValueError(f"{file} is not an eval run")
    return data


def list_runs(root: Path = RUNS_DIR) -> list[RunSummary]:
    """Every readable run under `root`, newest first; unreadable folders are left out."""
    runs = []
    for folder in root.iterdir() if root.is_dir() else ():
        try:
            run = load_run(folder)
        except (OSError, ValueError):
            continue
        gate = run.get("gate")
        runs.append(
            RunSummary(
                path=folder,
                created_at=str(run.get("created_at", "")),
                suite=str(run.get("suite", "")),
                profile=str(run.get("profile", "")),
                gate=""
                if not gate or not gate.get("has_profile", True)
                else ("passed" if gate["passed"] else "FAILED"),
                metrics=len(run["metrics"]),
            )
        )
    return sorted(runs, key=lambda r: (r.created_at, r.path.name), reverse=True)


def compare_runs(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[MetricDelta]:
    """Every metric of either run with its change; the direction comes from the gate's tracking rules."""
    old: Mapping[str, float] = before.get("metrics", {})
    new: Mapping[str, float] = after.get("metrics", {})
    deltas = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        deltas.append(MetricDelta(name, a, b, _verdict(name, a, b)))
    return deltas


def _verdict(name: str, before: float | None, after: float | None) -> str:
    if before is None:
        return "new"
    if after is None:
        return "gone"
    if abs(after - before) <= SAME:
        return "same"
    rule = tracking_rule(name)
    if rule is None:
        return "changed"
    return "better" if (after > before) == rule.higher_is_better else "worse"


def delta_rows(deltas: list[MetricDelta], changed_only: bool = False) -> list[dict[str, Any]]:
    """Table rows for display."""
    return [
        {
            "metric": d.metric,
            "before": d.before,
            "after": d.after,
            "delta": None if d.delta is None else round(d.delta, 4),
            "verdict": d.verdict,
        }
        for d in deltas
        if not changed_only or d.verdict != "same"
    ]


def report_html(path: Path) -> str:
    file = path / REPORT_FILE
    return file.read_text(encoding="utf-8") if file.is_file() else ""

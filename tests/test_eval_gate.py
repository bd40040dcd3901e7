"""The regression gate: a deliberately worse run fails it, through the API and through `replydesk eval`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

import engine.compliance
from engine import cli_eval
from engine.compliance import Verdict
from engine.settings import Settings
from evals.gate import BASELINE_PATH, compare, load_baseline, profile_from_run, tracking_rule, update_baseline
from evals.gate import main as gate_main
from evals.report import build_run

BASELINE = {
    "format": 1,
    "profiles": {
        "fake-fast": {
            "datasets": {"intent.buyer_messages": "a" * 64},
            "metrics": {
                "intent.buyer_messages.macro_f1": {
                    "value": 0.80,
                    "tolerance": 0.02,
                    "higher_is_better": True,
                },
                "intent.buyer_messages.ece": {"value": 0.10, "tolerance": 0.03, "higher_is_better": False},
                "compliance.compliance.block_recall": {
                    "value": 1.0,
                    "tolerance": 0.0,
                    "higher_is_better": True,
                },
            },
        }
    },
}


def make_run(metrics: dict[str, float], suites: dict[str, str | None], sha: str = "a" * 64) -> dict[str, Any]:
    results = [
        {
            "suite": name,
            "skipped": reason,
            "metrics": {k: v for k, v in metrics.items() if k.startswith(name + ".")},
            "datasets": {"buyer_messages": {"sha256": sha}} if name == "intent" else {},
        }
        for name, reason in suites.items()
    ]
    return build_run("all", results, backend="fake", fast=True, seed=13)


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"intent.buyer_messages.macro_f1": 0.79, "intent.buyer_messages.ece": 0.12}, "unchanged"),
        ({"intent.buyer_messages.macro_f1": 0.77, "intent.buyer_messages.ece": 0.10}, "regression"),
        ({"intent.buyer_messages.macro_f1": 0.85, "intent.buyer_messages.ece": 0.10}, "improvement"),
        (
            {"intent.buyer_messages.macro_f1": 0.80, "intent.buyer_messages.ece": 0.14},
            "regression",
        ),  # lower is better
        ({"intent.buyer_messages.ece": 0.10}, "missing"),
    ],
)
def test_compare_statuses(metrics: dict[str, float], expected: str) -> None:
    result = compare(make_run(metrics, {"intent": None}), BASELINE)
    statuses = {f.status for f in result.findings}
    assert expected in statuses
    assert result.passed is (expected not in {"regression", "missing"})
    assert {f.metric.split(".")[0] for f in result.findings} == {"intent"}  # compliance did not run: not checked


def test_a_skipped_suite_fails_the_gate_and_is_explained() -> None:
    run = make_run({"intent.buyer_messages.macro_f1": 0.8, "intent.buyer_messages.ece": 0.1},
                   {"intent": None, "compliance": "data set missing"})  # fmt: skip
    result = compare(run, BASELINE)
    assert not result.passed
    assert any("compliance was skipped" in note for note in result.notes)


def test_changed_data_set_is_noted() -> None:
    run = make_run(
        {"intent.buyer_messages.macro_f1": 0.8, "intent.buyer_messages.ece": 0.1}, {"intent": None}, "b" * 64
    )
    assert any("changed since the baseline" in note for note in compare(run, BASELINE).notes)


def test_unknown_profile_is_reported() -> None:
    run = make_run({}, {"intent": None})
    run["profile"] = "real-full"
    result = compare(run, BASELINE)
    assert not result.has_profile and result.passed


def test_tracking_rules_skip_machine_dependent_numbers() -> None:
    assert tracking_rule("latency.buyer_messages.intent_median_ms") is None
    assert tracking_rule("online.database.acceptance_rate") is None
    rule = tracking_rule("compliance.compliance.false_block_rate")
    assert rule is not None and not rule.higher_is_better


def test_update_baseline_keeps_other_suites_and_profiles(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(BASELINE), "utf-8")
    run = make_run({"compliance.compliance.block_recall": 0.9}, {"compliance": None})
    run["suite"] = "compliance"
    update_baseline(run, path)
    stored = load_baseline(path)["profiles"]["fake-fast"]["metrics"]
    assert stored["compliance.compliance.block_recall"]["value"] == 0.9
    assert stored["intent.buyer_messages.macro_f1"]["value"] == 0.8


def test_committed_baseline_tracks_every_gated_suite() -> None:
    baseline = load_baseline(BASELINE_PATH)
    profile = baseline["profiles"]["fake-fast"]
    suites = {name.split(".")[0] for name in profile["metrics"]}
    assert {"intent", "language", "retrieval", "compliance", "drafts"} <= suites
    assert profile_from_run({"metrics": {}})["metrics"] == {}


# -- end to end: `replydesk eval` with a deliberately worse rule set --------------------------------

CASES = [
    {
        "id": "1",
        "text": "Visit www.example-shop.com for 20% off",
        "language": "en",
        "blocked": True,
        "rules": ["link"],
    },
    {
        "id": "2",
        "text": "Mail me at seller@example.com",
        "language": "en",
        "blocked": True,
        "rules": ["email"],
    },
    {
        "id": "3",
        "text": "Your parcel left our warehouse today.",
        "language": "en",
        "blocked": False,
        "rules": [],
    },
]


def eval_args(**overrides: Any) -> argparse.Namespace:
    values: dict[str, Any] = {
        "suite": "compliance", "data": None, "fast": True, "baseline": None, "fail_on_regression": False,
        "update_baseline": False, "out": None, "seed": 13, "judge": False, "limit": None, "quiet": True,
    }  # fmt: skip
    values.update(overrides)
    return argparse.Namespace(**values)


def test_cli_gate_fails_a_deliberately_worse_run(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "compliance.jsonl"
    data.write_text("".join(json.dumps(c) + "\n" for c in CASES), "utf-8")
    baseline = tmp_path / "baseline.json"
    common = {"data": data, "baseline": baseline}

    assert cli_eval.cmd_eval(eval_args(**common, update_baseline=True, out=tmp_path / "r0"), settings) == 0
    stored = load_baseline(baseline)["profiles"]["fake-fast"]["metrics"]
    assert stored["compliance.compliance.block_recall"]["value"] == 1.0

    good = eval_args(**common, fail_on_regression=True, out=tmp_path / "r1")
    assert cli_eval.cmd_eval(good, settings) == 0

    # A "rule change" that lets everything through: block recall drops from 1.0 to 0.0.
    monkeypatch.setattr(engine.compliance, "check_reply", lambda text, **_: Verdict(violations=()))
    worse = eval_args(**common, fail_on_regression=True, out=tmp_path / "r2")
    assert cli_eval.cmd_eval(worse, settings) == 1
    output = capsys.readouterr().out
    assert "regression  compliance.compliance.block_recall" in output and "gate FAILED" in output
    run = json.loads((tmp_path / "r2" / "run.json").read_text("utf-8"))
    assert run["gate"]["passed"] is False
    assert "regression" in (tmp_path / "r2" / "report.html").read_text("utf-8")

    # Without --fail-on-regression the same run reports but does not fail; the stored run re-checks to 1.
    assert cli_eval.cmd_eval(eval_args(**common, out=tmp_path / "r3"), settings) == 0
    assert gate_main([str(tmp_path / "r2" / "run.json"), "--baseline", str(baseline)]) == 1
    assert gate_main([str(tmp_path / "r1" / "run.json"), "--baseline", str(baseline)]) == 0


def test_cli_gate_fails_when_the_profile_is_missing(tmp_path: Path, settings: Settings) -> None:
    data = tmp_path / "compliance.jsonl"
    data.write_text("".join(json.dumps(c) + "\n" for c in CASES), "utf-8")
    args = eval_args(data=data, baseline=tmp_path / "none.json", fail_on_regression=True, out=tmp_path / "r")
    assert cli_eval.cmd_eval(args, settings) == 1


def test_runs_index_lists_runs_and_compares_two(tmp_path: Path) -> None:
    from evals.report import write_run
    from evals.runs_index import compare_runs, delta_rows, list_runs, load_run

    older = make_run({"intent.buyer_messages.macro_f1": 0.80, "intent.buyer_messages.ece": 0.10}, {"intent": None})
    newer = make_run({"intent.buyer_messages.macro_f1": 0.75, "intent.buyer_messages.ece": 0.05}, {"intent": None})
    older["created_at"], newer["created_at"] = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
    newer["metrics"]["latency.buyer_messages.intent_median_ms"] = 3.0
    write_run(older, root=tmp_path)
    write_run(newer, root=tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{", "utf-8")

    runs = list_runs(tmp_path)
    assert [r.created_at for r in runs] == ["2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"]
    verdicts = {d.metric: d.verdict for d in compare_runs(load_run(runs[1].path), load_run(runs[0].path))}
    assert verdicts == {
        "intent.buyer_messages.macro_f1": "worse",
        "intent.buyer_messages.ece": "better",  # lower calibration error is better
        "latency.buyer_messages.intent_median_ms": "new",
    }
    rows = delta_rows(compare_runs(older, older), changed_only=True)
    assert rows == []

"""Regression gate: compare a run's metrics with ``evals/baseline.json``.

The baseline holds one *profile* per NLP backend and mode (``fake-fast``, ``real-full``, ...): metrics of a
fast, sampled run are not comparable with a full one. Each tracked metric has a value, a tolerance and a
direction; a change worse than the tolerance is a regression. A tracked metric that a run of its suite no
longer produces, or a suite that was skipped, also fails the gate.

Refresh after an intended change (a better model, a new template set, a fixed data set)::

    REPLYDESK_NLP=fake replydesk eval all --fast --update-baseline
    replydesk eval all --update-baseline            # real backend, full sets

then review the diff of ``evals/baseline.json`` and commit it with the change that moved the numbers.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import InputError

BASELINE_PATH = Path(__file__).resolve().parent / "baseline.json"
BASELINE_FORMAT = 1


@dataclass(frozen=True)
class TrackRule:
    pattern: str  # fnmatch over metric names
    tolerance: float  # absolute change allowed in the bad direction
    higher_is_better: bool = True


# First matching rule wins. Latency, counts and online numbers are reported, not gated: they depend on the
# machine or on live data.
TRACKED: tuple[TrackRule, ...] = (
    TrackRule("intent.*.accuracy", 0.02),
    TrackRule("intent.*.macro_f1", 0.02),
    TrackRule("intent.*.macro_f1_*", 0.05),  # per language: smaller samples move more
    TrackRule("intent.*.selective_accuracy", 0.03),
    TrackRule("intent.*.needs_review_rate", 0.05, higher_is_better=False),
    TrackRule("intent.*.ece", 0.03, higher_is_better=False),
    TrackRule("intent.*.accuracy_len_*", 0.05),
    TrackRule("language.*.accuracy", 0.01),
    TrackRule("language.*.macro_f1", 0.01),
    TrackRule("language.*.accuracy_len_*", 0.03),
    TrackRule("retrieval.*.hit_at_1", 0.03),
    TrackRule("retrieval.*.hit_at_5", 0.03),
    TrackRule("retrieval.*.mrr", 0.03),
    TrackRule("retrieval.*.ndcg_at_5", 0.03),
    TrackRule("compliance.*.block_recall", 0.0),
    TrackRule("compliance.*.false_block_rate", 0.01, higher_is_better=False),
    TrackRule("compliance.*.rule_recall_macro", 0.02),
    TrackRule("drafts.*.pass_rate", 0.03),
    TrackRule("drafts.*.action_accuracy", 0.03),
    TrackRule("drafts.*.fact_coverage", 0.02),
    TrackRule("drafts.*.language_match", 0.02),
    TrackRule("drafts.*.allowed_rate", 0.0),
    TrackRule("drafts.*.semantic_similarity", 0.03),
)
EPSILON = 1e-9


def tracking_rule(metric: str, rules: Sequence[TrackRule] = TRACKED) -> TrackRule | None:
    return next((rule for rule in rules if fnmatch.fnmatchcase(metric, rule.pattern)), None)


@dataclass(frozen=True)
class Finding:
    metric: str
    status: str  # regression, improvement, unchanged, missing
    baseline: float | None
    value: float | None
    tolerance: float
    higher_is_better: bool

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.value is None:
            return None
        return self.value - self.baseline

    def to_dict(self) -> dict[str, Any]:
        delta = self.delta
        return {
            "metric": self.metric,
            "status": self.status,
            "baseline": self.baseline,
            "value": self.value,
            "delta": None if delta is None else round(delta, 6),
            "tolerance": self.tolerance,
            "higher_is_better": self.higher_is_better,
        }

    def line(self) -> str:
        arrow = "↑" if self.higher_is_better else "↓"
        if self.value is None:
            return f"{self.status:<11} {self.metric}: missing from the run (baseline {self.baseline:.4f})"
        delta = self.delta or 0.0
        return (
            f"{self.status:<11} {self.metric}: {self.value:.4f} (baseline {self.baseline:.4f}, {delta:+.4f}, "
            f"tolerance {self.tolerance:.3f}, {arrow} is better)"
        )


@dataclass
class GateResult:
    profile: str
    baseline: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a data set changed since the baseline
    has_profile: bool = True  # False: the baseline has no entry for this backend and mode

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status in {"regression", "missing"}]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "baseline": self.baseline,
            "passed": self.passed,
            "has_profile": self.has_profile,
            "findings": [f.to_dict() for f in self.findings],
            "notes": self.notes,
        }

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.status] = counts.get(finding.status, 0) + 1
        text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing tracked"
        return f"gate {'passed' if self.passed else 'FAILED'} ({self.profile}): {text}"


def load_baseline(path: Path = BASELINE_PATH) -> dict[str, Any]:
    if not path.is_file():
        return {"format": BASELINE_FORMAT, "profiles": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc.msg}); restore it from version control.") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        raise InputError(f"{path} is not a format-{BASELINE_FORMAT} baseline; refresh it (see evals/gate.py).")
    return data


def _ran_suites(run: Mapping[str, Any]) -> tuple[set[str], dict[str, str]]:
    ran, skipped = set(), {}
    for suite in run.get("suites", []):
        if suite.get("skipped"):
            skipped[suite["suite"]] = str(suite["skipped"])
        else:
            ran.add(suite["suite"])
    return ran, skipped


def compare(run: Mapping[str, Any], baseline: Mapping[str, Any], baseline_name: str = "baseline") -> GateResult:
    """Check every tracked baseline metric of the suites this run covered."""
    profile = str(run.get("profile"))
    result = GateResult(profile=profile, baseline=baseline_name)
    entry = baseline.get("profiles", {}).get(profile)
    if entry is None:
        result.notes.append(f"no baseline for profile {profile}; create it with --update-baseline")
        result.has_profile = False
        return result
    ran, skipped = _ran_suites(run)
    metrics: Mapping[str, float] = run.get("metrics", {})
    for name, tracked in sorted(entry.get("metrics", {}).items()):
        suite = name.split(".", 1)[0]
        if suite not in ran and suite not in skipped:
            continue  # this run did not cover that suite
        value = metrics.get(name)
        result.findings.append(
            _judge(name, float(tracked["value"]), value, tracked["tolerance"], tracked["higher_is_better"])
        )
    for suite, reason in sorted(skipped.items()):
        result.notes.append(f"suite {suite} was skipped: {reason}")
    for name, digest in entry.get("datasets", {}).items():
        current = _dataset_hashes(run).get(name)
        if current and current != digest:
            result.notes.append(f"data set {name} changed since the baseline (sha256 {digest[:12]} → {current[:12]})")
    return result


def _judge(name: str, baseline: float, value: float | None, tolerance: float, higher: bool) -> Finding:
    if value is None:
        return Finding(name, "missing", baseline, None, tolerance, higher)
    change = value - baseline if higher else baseline - value  # positive = better
    if change < -(tolerance + EPSILON):
        status = "regression"
    elif change > EPSILON:
        status = "improvement"
    else:
        status = "unchanged"
    return Finding(name, status, baseline, value, tolerance, higher)


def _dataset_hashes(run: Mapping[str, Any]) -> dict[str, str]:
    hashes = {}
    for suite in run.get("suites", []):
        for name, info in suite.get("datasets", {}).items():
            if info.get("sha256"):
                hashes[f"{suite['suite']}.{name}"] = info["sha256"]
    return hashes


def profile_from_run(run: Mapping[str, Any], rules: Sequence[TrackRule] = TRACKED) -> dict[str, Any]:
    tracked = {}
    for name, value in sorted(run.get("metrics", {}).items()):
        rule = tracking_rule(name, rules)
        if rule is not None:
            tracked[name] = {
                "value": round(float(value), 4),
                "tolerance": rule.tolerance,
                "higher_is_better": rule.higher_is_better,
            }
    return {
        "created_at": run.get("created_at"),
        "suite": run.get("suite"),
        "seed": run.get("seed"),
        "environment": run.get("environment", {}),
        "datasets": _dataset_hashes(run),
        "metrics": tracked,
    }


def update_baseline(run: Mapping[str, Any], path: Path = BASELINE_PATH) -> Path:
    """Replace the run's profile in the baseline (other profiles stay) and write it back."""
    baseline = load_baseline(path)
    profiles = dict(baseline.get("profiles", {}))
    fresh = profile_from_run(run)
    if run.get("suite") != "all" and run.get("profile") in profiles:
        # A single-suite refresh keeps the other suites' entries.
        previous = profiles[str(run["profile"])]
        suite = str(run["suite"])
        kept = {k: v for k, v in previous.get("metrics", {}).items() if not k.startswith(f"{suite}.")}
        fresh["metrics"] = dict(sorted({**kept, **fresh["metrics"]}.items()))
        kept_sets = {k: v for k, v in previous.get("datasets", {}).items() if not k.startswith(f"{suite}.")}
        fresh["datasets"] = {**kept_sets, **fresh["datasets"]}
        fresh["suite"] = previous.get("suite", suite)
        fresh["environment"] = {**previous.get("environment", {}), **fresh["environment"]}
    profiles[str(run["profile"])] = fresh
    document = {
        "format": BASELINE_FORMAT,
        "about": "Tracked eval metrics per NLP backend and mode; refresh as described in evals/gate.py.",
        "profiles": dict(sorted(profiles.items())),
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m evals.gate RUN.json [--baseline FILE]``: re-check a stored run; exit 1 on a regression."""
    parser = argparse.ArgumentParser(prog="python -m evals.gate", description=main.__doc__)
    parser.add_argument("run", type=Path, help="a run.json written by `replydesk eval`")
    parser.add_argument("--baseline", type=Path, default=BASELINE_PATH)
    args = parser.parse_args(argv)
    run = json.loads(args.run.read_text(encoding="utf-8"))
    result = compare(run, load_baseline(args.baseline), str(args.baseline))
    for finding in result.findings:
        if finding.status != "unchanged":
            print(finding.line())
    for note in result.notes:
        print(f"note: {note}")
    print(result.summary())
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())

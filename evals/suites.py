"""Eval suites, one per pipeline stage: each reads its data sets, runs the stage in-process, returns metrics.

Suites: ``intent``, ``language``, ``retrieval``, ``compliance``, ``drafts``, ``latency``, ``online``, and
``all`` (every suite but ``online``, which needs a database with agents' decisions). ``fast`` samples each
data set deterministically (seeded hash order, stratified by label), so the gated run in ``make test`` stays
short.

Metric names are flat, ``<suite>.<dataset>.<metric>``, so runs and the baseline compare key by key.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from engine.errors import InputError
from engine.settings import Settings
from evals import metrics as m
from evals.prepare import DATASETS_DIR, read_jsonl

if TYPE_CHECKING:  # importing components at run time loads the NLP stack
    from engine.components import Components
    from engine.nlp.protocols import LanguageDetector
    from evals.judge import Judge

SUITES = ("intent", "language", "retrieval", "compliance", "drafts", "latency", "online")
ALL_SUITES = ("intent", "language", "retrieval", "compliance", "drafts", "latency")
DEFAULT_SEED = 13
WORST_CASES = 15
# Rows per data set in fast mode (stratified by label); `None` keeps the whole set.
FAST_LIMITS = {
    "intent": 260,
    "language": 260,
    "retrieval": 80,
    "compliance": None,
    "drafts": None,
    "latency": 30,
}


@dataclass(frozen=True)
class Dataset:
    name: str
    path: Path
    sha256: str
    records: list[dict[str, Any]]

    def info(self, used: int) -> dict[str, Any]:
        return {
            "path": _display_path(self.path),
            "sha256": self.sha256,
            "rows": len(self.records),
            "used": used,
        }


@dataclass
class SuiteResult:
    suite: str
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # per data set: breakdowns, plots' data, worst cases
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: str | None = None  # why the suite could not run (no database, no data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "metrics": m.rounded(self.metrics),
            "details": m.rounded(self.details),
            "datasets": self.datasets,
            "seconds": round(self.seconds, 2),
            "skipped": self.skipped,
        }


class Progress:
    """A one-line progress counter on stderr (redrawn in a terminal, start and end lines otherwise)."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interactive = enabled and self.stream.isatty()
        self._last = 0.0
        if enabled and not self.interactive:
            print(f"{label}: {total} …", file=self.stream, flush=True)

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.interactive and (now - self._last > 0.2 or self.done >= self.total):
            self._last = now
            print(f"\r{self.label}: {self.done}/{self.total}", end="", file=self.stream, flush=True)

    def close(self) -> None:
        if self.interactive:
            print(file=self.stream, flush=True)


@dataclass
class EvalContext:
    settings: Settings
    fast: bool = False
    seed: int = DEFAULT_SEED
    data: Path | None = None  # replaces the suite's default data set
    datasets_dir: Path = DATASETS_DIR
    judge: Judge | None = None
    progress: bool = True
    components_factory: Callable[[Settings], Components] | None = None

    @cached_property
    def components(self) -> Components:
        if self.components_factory is not None:
            return self.components_factory(self.settings)
        from engine.components import build_components

        return build_components(self.settings)

    @cached_property
    def language_detector(self) -> LanguageDetector:
        """The pipeline's detector; built alone when nothing else needs the full components (fast)."""
        if self.components_factory is not None or "components" in self.__dict__:
            return self.components.language
        from engine.nlp.language import FastTextLanguageDetector

        return FastTextLanguageDetector()

    def limit(self, suite: str) -> int | None:
        return FAST_LIMITS.get(suite) if self.fast else None

    def datasets(self, *names: str) -> list[Dataset]:
        """The suite's data sets, or the one given with ``--data``."""
        if self.data is not None:
            return [load_dataset(self.data)]
        return [
            load_dataset(self.datasets_dir / name)
            if (self.datasets_dir / name).is_dir()
            else load_dataset(self.datasets_dir / f"{name}.jsonl")
            for name in names
        ]

    def progress_bar(self, label: str, total: int) -> Progress:
        return Progress(label, total, enabled=self.progress)


def load_dataset(path: Path) -> Dataset:
    """One JSON Lines file, or a folder of them (one per language, read in name order) as one data set."""
    if path.is_dir():
        parts = sorted(path.glob("*.jsonl"))
        if not parts:
            raise InputError(f"Eval data set folder {path} holds no .jsonl files; add them or fix --data.")
        digest = hashlib.sha256()
        records: list[dict[str, Any]] = []
        for part in parts:
            digest.update(part.name.encode() + b"\n" + part.read_bytes())
            records.extend(read_jsonl(part))
        return Dataset(path.name, path, digest.hexdigest(), records)
    if not path.is_file():
        raise InputError(f"Eval data set {path} does not exist; run `python -m evals.prepare` or fix --data.")
    raw = path.read_bytes()
    return Dataset(path.stem, path, hashlib.sha256(raw).hexdigest(), list(read_jsonl(path)))


def sample(records: Sequence[dict[str, Any]], limit: int | None, seed: int, key: str | None) -> list[dict[str, Any]]:
    """Up to `limit` records in a seeded hash order, round-robin over the values of `key` (stratified)."""
    if limit is None or len(records) <= limit:
        return list(records)

    def order(record: dict[str, Any]) -> str:
        return hashlib.sha256(f"{seed}:{record['id']}".encode()).hexdigest()

    strata: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(records, key=order):
        strata[str(record.get(key, "")) if key else ""].append(record)
    chosen: list[dict[str, Any]] = []
    queues = [strata[name] for name in sorted(strata)]
    while len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return sorted(chosen, key=lambda r: str(r["id"]))


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(DATASETS_DIR.parent.parent))
    except ValueError:
        return str(path)


def classification_details(
    texts: Sequence[str],
    truth: Sequence[str],
    predicted: Sequence[str],
    scores: Sequence[float],
    groups: dict[str, Sequence[str]],
    preferred: Sequence[str],
) -> tuple[dict[str, float], dict[str, Any]]:
    """Headline metrics and the breakdowns the report plots, for any labelled classification run."""
    labels = m.label_order(truth, predicted, preferred)
    gold_labels = [label for label in labels if label in set(truth)]
    correct = [t == p for t, p in zip(truth, predicted, strict=True)]
    headline = {
        "count": float(len(truth)),
        "accuracy": m.accuracy(truth, predicted),
        "macro_f1": m.macro_f1(truth, predicted, gold_labels),
        "ece": m.expected_calibration_error(scores, correct),
    }
    details: dict[str, Any] = {
        "per_class": m.per_class(truth, predicted, gold_labels),
        "confusion": {"labels": labels, "matrix": m.confusion_matrix(truth, predicted, labels)},
        "reliability": [b.to_dict() for b in m.reliability_bins(scores, correct)],
        "by_length": m.accuracy_by_length(texts, correct),
    }
    for name, values in groups.items():
        details[f"by_{name}"] = m.accuracy_by_group(values, correct)
    for bucket, row in details["by_length"].items():
        headline[f"accuracy_len_{bucket}"] = row["accuracy"]
    # Confident mistakes first: they are the ones agents would not double-check.
    mistakes = sorted((i for i, right in enumerate(correct) if not right), key=lambda i: (-scores[i], texts[i]))[
        :WORST_CASES
    ]
    details["worst"] = [
        {"text": texts[i], "gold": truth[i], "predicted": predicted[i], "score": scores[i]} for i in mistakes
    ]
    return headline, details


def prefixed(suite: str, dataset: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{suite}.{dataset}.{name}": float(value) for name, value in values.items()}


# -- suites -------------------------------------------------------------------------------------------------


def run_intent(ctx: EvalContext) -> SuiteResult:
    from engine.taxonomy import INTENTS

    result = SuiteResult("intent")
    for dataset in ctx.datasets("buyer_messages", "bitext_heldout", "realstyle"):
        rows = [r for r in dataset.records if r.get("intent")]
        rows = sample(rows, ctx.limit("intent"), ctx.seed, "intent")
        bar = ctx.progress_bar(f"intent {dataset.name}", len(rows))
        analyses = []
        for start in range(0, len(rows), 128):
            chunk = rows[start : start + 128]
            analyses.extend(
                ctx.components.analyze_many([r["text"] for r in chunk], [r.get("marketplace") for r in chunk])
            )
            bar.advance(len(chunk))
        bar.close()
        headline, details = classification_details(
            [r["text"] for r in rows],
            [r["intent"] for r in rows],
            [a.intent.intent for a in analyses],
            [a.intent.score for a in analyses],
            {"language": [r.get("language") or "und" for r in rows]},
            INTENTS,
        )
        headline.update(abstention_metrics(rows, analyses))
        _attach_ids(details["worst"], rows, [r["text"] for r in rows])
        result.metrics.update(prefixed("intent", dataset.name, headline))
        result.details[dataset.name] = details
        result.datasets[dataset.name] = dataset.info(len(rows))
    return result


def abstention_metrics(rows: Sequence[dict[str, Any]], analyses: Sequence[Any]) -> dict[str, float]:
    """Share flagged for review, accuracy of what is not flagged, and macro-F1 per language (10+ messages)."""
    flagged = [a.intent.needs_review for a in analyses]
    kept = [(r["intent"], a.intent.intent) for r, a, f in zip(rows, analyses, flagged, strict=True) if not f]
    values = {
        "needs_review_rate": m.rate(flagged),
        "selective_accuracy": m.accuracy([t for t, _ in kept], [p for _, p in kept]) if kept else 0.0,
    }
    by_language: dict[str, list[int]] = defaultdict(list)
    for position, row in enumerate(rows):
        by_language[row.get("language") or "und"].append(position)
    for language, positions in sorted(by_language.items()):
        if len(positions) >= 10:
            truth = [rows[i]["intent"] for i in positions]
            values[f"macro_f1_{language}"] = m.macro_f1(truth, [analyses[i].intent.intent for i in positions])
    return values


def run_language(ctx: EvalContext) -> SuiteResult:
    from engine.taxonomy import LANGUAGES, MARKETPLACES

    result = SuiteResult("language")
    for dataset in ctx.datasets("language"):
        rows = sample([r for r in dataset.records if r.get("language")], ctx.limit("language"), ctx.seed, "language")
        detector = ctx.language_detector
        bar = ctx.progress_bar(f"language {dataset.name}", len(rows))
        guesses = []
        for row in rows:
            marketplace = MARKETPLACES.get(row.get("marketplace") or "")
            prior = marketplace.default_language if marketplace else None
            guesses.append(detector.detect(row["text"], prior=prior))
            bar.advance()
        bar.close()
        headline, details = classification_details(
            [r["text"] for r in rows],
            [r["language"] for r in rows],
            [g.language for g in guesses],
            [g.score for g in guesses],
            {
                "language": [r["language"] for r in rows],
                "marketplace": [r.get("marketplace") or "none" for r in rows],
            },
            LANGUAGES,
        )
        _attach_ids(details["worst"], rows, [r["text"] for r in rows])
        result.metrics.update(prefixed("language", dataset.name, headline))
        result.details[dataset.name] = details
        result.datasets[dataset.name] = dataset.info(len(rows))
    return result


def run_compliance(ctx: EvalContext) -> SuiteResult:
    """The gate on its own, with each case's context: ``language`` is the reply's language and is passed as
    ``reply_language`` when ``buyer_language`` is set; ``allow_list`` and ``message_type`` when present."""
    from engine.compliance import check_reply

    result = SuiteResult("compliance")
    # the team set, replies full of numbers that must pass, and the team set's blocked replies disguised
    for dataset in ctx.datasets("compliance", "compliance_legit", "compliance_mutated"):
        rows = sample(dataset.records, ctx.limit("compliance"), ctx.seed, "blocked")
        bar = ctx.progress_bar(f"compliance {dataset.name}", len(rows))
        verdicts = []
        for row in rows:
            buyer_language = row.get("buyer_language")
            verdicts.append(
                check_reply(
                    row["text"],
                    buyer_language=buyer_language,
                    reply_language=row.get("language") if buyer_language else None,
                    allow_list=list(row.get("allow_list") or []),
                    message_type=row.get("message_type"),
                )
            )
            bar.advance()
        bar.close()
        gold_blocked = [bool(r.get("blocked")) for r in rows]
        blocked = [not v.allowed for v in verdicts]
        gold_rules = [set(r.get("rules") or []) for r in rows]
        found_rules = [{v.rule for v in verdict.violations} for verdict in verdicts]
        rules = m.per_rule(gold_rules, found_rules)
        headline = {
            "count": float(len(rows)),
            "accuracy": m.accuracy(gold_blocked, blocked),
        }
        if any(rules[rule]["support"] for rule in rules):
            headline["rule_recall_macro"] = _mean(row["recall"] for row in rules.values() if row["support"])
        if any(gold_blocked):  # a set of acceptable replies only has no recall to measure, and vice versa
            headline["block_recall"] = m.block_recall(gold_blocked, blocked)
        if not all(gold_blocked):
            headline["false_block_rate"] = m.false_block_rate(gold_blocked, blocked)
        wrong = [i for i, (g, b) in enumerate(zip(gold_blocked, blocked, strict=True)) if g != b]
        wrong += [i for i in range(len(rows)) if i not in wrong and not gold_rules[i] <= found_rules[i]]
        result.metrics.update(prefixed("compliance", dataset.name, headline))
        result.details[dataset.name] = {
            "per_rule": rules,
            "by_language": m.accuracy_by_group(
                [r.get("language") or "und" for r in rows],
                [g == b for g, b in zip(gold_blocked, blocked, strict=True)],
            ),
            "worst": [
                {
                    "id": rows[i]["id"],
                    "text": rows[i]["text"],
                    "gold": ("blocked " if gold_blocked[i] else "allowed ") + ",".join(sorted(gold_rules[i])),
                    "predicted": ("blocked " if blocked[i] else "allowed ") + ",".join(sorted(found_rules[i])),
                }
                for i in wrong[:WORST_CASES]
            ],
        }
        result.datasets[dataset.name] = dataset.info(len(rows))
    return result


def _mean(values: Iterable[float]) -> float:
    collected = list(values)
    return sum(collected) / len(collected) if collected else 0.0


def _attach_ids(worst: list[dict[str, Any]], rows: Sequence[dict[str, Any]], texts: Sequence[str]) -> None:
    ids = {text: row["id"] for text, row in zip(texts, rows, strict=True)}
    for case in worst:
        case["id"] = ids.get(case["text"], "")


def _run_stage_suite(name: str, ctx: EvalContext) -> SuiteResult:
    from evals import stage_suites

    runner: Callable[[EvalContext], SuiteResult] = getattr(stage_suites, f"run_{name}")
    return runner(ctx)


RUNNERS: dict[str, Callable[[EvalContext], SuiteResult]] = {
    "intent": run_intent,
    "language": run_language,
    "compliance": run_compliance,
    "retrieval": lambda ctx: _run_stage_suite("retrieval", ctx),
    "drafts": lambda ctx: _run_stage_suite("drafts", ctx),
    "latency": lambda ctx: _run_stage_suite("latency", ctx),
    "online": lambda ctx: _run_stage_suite("online", ctx),
}


def run_suites(suite: str, ctx: EvalContext) -> list[SuiteResult]:
    """Run one suite or ``all``; a suite whose data set is missing is reported as skipped, not crashed."""
    names = ALL_SUITES if suite == "all" else (suite,)
    if suite != "all" and suite not in RUNNERS:
        raise InputError(f"Unknown eval suite {suite!r}; use one of: {', '.join((*SUITES, 'all'))}.")
    if suite == "all" and ctx.data is not None:
        raise InputError("--data replaces one suite's data set; name the suite instead of 'all'.")
    results = []
    for name in names:
        started = time.perf_counter()
        try:
            outcome = RUNNERS[name](ctx)
        except InputError as exc:
            if suite != "all":
                raise
            outcome = SuiteResult(name, skipped=str(exc))
        outcome.seconds = time.perf_counter() - started
        results.append(outcome)
    return results

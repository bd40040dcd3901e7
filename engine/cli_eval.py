"""`replydesk eval SUITE` (offline reply-quality evals with a regression gate) and `eval export-golden`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.settings import PROJECT_ROOT, Settings

EXPORT_GOLDEN = "export-golden"


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    if args.suite == EXPORT_GOLDEN:
        return _export_golden(args, settings)
    from evals.gate import BASELINE_PATH, compare, load_baseline, update_baseline
    from evals.judge import Judge, JudgeConfig
    from evals.report import build_run, write_run
    from evals.suites import EvalContext, run_suites

    judge = None
    if args.judge:
        config = JudgeConfig.from_env()
        if config is None:
            raise InputError("--judge needs REPLYDESK_JUDGE_MODEL (and a key or base URL); set them or drop --judge.")
        judge = Judge.from_config(config)
    context = EvalContext(
        settings=settings,
        fast=args.fast,
        seed=args.seed,
        data=args.data,
        judge=judge,
        progress=not args.quiet,
    )
    results = run_suites(args.suite, context)
    run = build_run(
        args.suite,
        [r.to_dict() for r in results],
        backend=settings.nlp_backend,
        fast=args.fast,
        seed=args.seed,
        environment=_environment(context) if "components" in context.__dict__ else {},
    )
    baseline_path: Path = args.baseline or BASELINE_PATH
    gate = compare(run, load_baseline(baseline_path), _shown(baseline_path))
    run["gate"] = gate.to_dict()
    out = write_run(run, args.out)
    _print_summary(run)
    for finding in gate.findings:
        if finding.status != "unchanged":
            print(finding.line())
    for note in gate.notes:
        print(f"note: {note}")
    print(gate.summary())
    status = 1 if args.fail_on_regression and (not gate.passed or not gate.has_profile) else 0
    if args.update_baseline:
        print(f"baseline profile {run['profile']} written to {update_baseline(run, baseline_path)}")
    print(f"report: {out / 'report.html'}")
    return status


def _environment(context: Any) -> dict[str, Any]:
    components = context.components
    intents = components.intents
    return {
        "intent_model": str(getattr(intents, "version", type(intents).__name__)),
        "embedder": str(getattr(components.embedder, "model_name", type(components.embedder).__name__)),
        "drafter": str(getattr(components.drafter, "name", type(components.drafter).__name__)),
        "judge": context.judge.model if context.judge is not None else None,
    }


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _print_summary(run: Mapping[str, Any]) -> None:
    print(f"{run['suite']} ({run['profile']}, seed {run['seed']})")
    for suite in run["suites"]:
        if suite.get("skipped"):
            print(f"  {suite['suite']}: skipped: {suite['skipped']}")
    for name, value in run["metrics"].items():
        print(f"  {name:<55} {value:10.4f}")


def _export_golden(args: argparse.Namespace, settings: Settings) -> int:
    from engine.db import Database
    from evals.golden import golden_cases

    if args.out is None:
        raise InputError("export-golden needs --out FILE (JSON Lines), e.g. --out evals/datasets/golden.jsonl.")
    db = Database(settings.resolved_database_url)
    db.check_migrated()
    with db.transaction() as session:
        cases = golden_cases(session, limit=args.limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as handle:
        for case in cases:
            handle.write(json.dumps(case, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{len(cases)} golden cases written to {args.out}")
    return 0


def register(add: Callable[[str, Any, str], argparse.ArgumentParser]) -> None:
    suites = ("intent", "language", "retrieval", "compliance", "drafts", "latency", "online", "all")
    command = add(
        "eval",
        cmd_eval,
        "offline evals with a JSON + HTML report under evals/runs/; `eval export-golden --out FILE` "
        "exports approved and edited replies as eval cases",
    )
    command.add_argument("suite", choices=(*suites, EXPORT_GOLDEN), help="suite to run, or export-golden")
    command.add_argument("--data", type=Path, help="run the suite on this JSON Lines file instead of its own sets")
    command.add_argument("--fast", action="store_true", help="deterministic samples (the gated run in make test)")
    command.add_argument("--baseline", type=Path, help="baseline to compare with (default evals/baseline.json)")
    command.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when a tracked metric drops beyond tolerance",
    )
    command.add_argument("--update-baseline", action="store_true", help="write this run's numbers as the baseline")
    command.add_argument("--out", type=Path, help="report folder (export-golden: the output file)")
    command.add_argument("--seed", type=int, default=13, help="sampling seed (default 13)")
    command.add_argument("--judge", action="store_true", help="score drafts with the LLM judge (REPLYDESK_JUDGE_*)")
    command.add_argument("--limit", type=int, help="export-golden: at most this many cases")
    command.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

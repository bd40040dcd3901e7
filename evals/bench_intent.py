"""Speed of `replydesk classify` against a raw encode by the encoder(s) it uses, measured in one run.

``python -m evals.bench_intent`` (and ``make bench``, through ``evals/bench.py``) prints:

- start-up: seconds from launching ``replydesk classify`` on one message to its answer (imports, language
  models, intent model), measured in a fresh process;
- raw encode: messages per second for the intent model's encoder(s) embedding the same texts, nothing else;
- classify: messages per second for the whole command (JSON in, language, intent, JSON out) after start-up;
- their ratio.

The texts are a fixed mix of the team's eval sets: short in-thread replies, real-style messages and all
six main languages (``evals/datasets/realstyle``, ``buyer_messages``, ``language``), repeated to `count`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.prepare import DATASETS_DIR, read_jsonl

ROUNDS = 3
STARTUP_TIMEOUT = 600  # seconds; a first start may train the intent model


def message_mix(count: int) -> list[dict[str, Any]]:
    """`count` messages cycling over the mix, ids made unique; the same list on every run."""
    pool: list[dict[str, Any]] = []
    sources = [*sorted((DATASETS_DIR / "realstyle").glob("*.jsonl")), DATASETS_DIR / "buyer_messages.jsonl"]
    sources.append(DATASETS_DIR / "language.jsonl")
    for path in sources:
        if path.is_file():
            pool.extend({"text": r["text"], "marketplace": r.get("marketplace")} for r in read_jsonl(path))
    if not pool:
        pool = [{"text": "Where is my order? It has not arrived yet.", "marketplace": None}]
    return [{"id": str(i), **pool[i % len(pool)]} for i in range(count)]


def encoders(analyzer: Any) -> list[Any]:
    """The embedder(s) the intent model encodes with (one, or one per language group)."""
    model = analyzer.intents
    found = getattr(model, "encoders", None)
    return list(found()) if callable(found) else [model.embedder]


def raw_encode_seconds(analyzer: Any, texts: Sequence[str]) -> float:
    """Time for the intent model's encoder(s) alone to embed `texts` the way classification routes them."""
    from engine.nlp.intent import normalise_message

    route = getattr(analyzer.intents, "route", None)
    cleaned = [normalise_message(t) for t in texts]
    started = time.perf_counter()
    if callable(route):
        for embedder, part in route(cleaned):  # (embedder, texts it encodes)
            embedder.embed(part)
    else:
        encoders(analyzer)[0].embed(cleaned)
    return time.perf_counter() - started


def classify_seconds(analyzer: Any, records: Sequence[dict[str, Any]]) -> float:
    from engine.cli import classify_stream

    source = io.StringIO("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    out = io.StringIO()
    started = time.perf_counter()
    classify_stream(analyzer, source, out)
    return time.perf_counter() - started


def startup_seconds(records: Sequence[dict[str, Any]]) -> float:
    """Wall time of ``replydesk classify`` on one message in a fresh process."""
    line = json.dumps(records[0], ensure_ascii=False) + "\n"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "engine.cli", "classify"],
        input=line,
        text=True,
        capture_output=True,
        check=True,
        timeout=STARTUP_TIMEOUT,
        env={**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")},
        cwd=Path(__file__).resolve().parent.parent,
    )
    return time.perf_counter() - started


def bench_intent(count: int = 1000, rounds: int = ROUNDS, *, startup: bool = True) -> dict[str, Any]:
    """Best of `rounds` alternating measurements of raw encode and classify on the same messages."""
    from engine.components import build_analyzer
    from engine.settings import Settings

    records = message_mix(count)
    texts = [r["text"] for r in records]
    started = startup_seconds(records) if startup else None
    analyzer = build_analyzer(Settings.from_env())
    classify_seconds(analyzer, records[:64])  # warm-up: first-batch costs are not throughput
    encode = classify = float("inf")
    for _ in range(rounds):
        encode = min(encode, raw_encode_seconds(analyzer, texts))
        classify = min(classify, classify_seconds(analyzer, records))
    names = [getattr(e, "model_name", type(e).__name__) for e in encoders(analyzer)]
    return {
        "messages": count,
        "encoders": names,
        "encode_per_s": count / encode,
        "classify_per_s": count / classify,
        "ratio": encode / classify,
        "startup_s": started,
    }


def table_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    names = " + ".join(result["encoders"])
    rows = [
        ("Raw encode throughput", f"{result['encode_per_s']:.0f} msg/s", f"{names}, {result['messages']} messages"),
        (
            "`replydesk classify` throughput",
            f"{result['classify_per_s']:.0f} msg/s",
            f"{result['ratio']:.2f}× raw encode, same texts, same run (JSON, language and intent included)",
        ),
    ]
    if result.get("startup_s") is not None:
        rows.append(("`replydesk classify` start-up", f"{result['startup_s']:.1f} s", "fresh process, one message"))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench_intent", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--no-startup", action="store_true", help="skip the fresh-process start-up measure")
    args = parser.parse_args(argv)
    result = bench_intent(args.messages, args.rounds, startup=not args.no_startup)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

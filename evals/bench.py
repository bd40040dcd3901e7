"""Throughput and latency of the pipeline's stages: ``python -m evals.bench`` (``make bench``).

Prints a Markdown table the README can quote:

- `replydesk classify` throughput against a raw encode by the same encoder(s), measured in the same run, their
  ratio and the command's start-up time (``evals/bench_intent.py``);
- compliance check: median milliseconds per reply, a 100,000-character reply and doubled hostile inputs
  (``evals/bench_compliance.py``);
- retrieval: top-5 latency over 100,000 past answers (synthetic vectors, real query encoding);
- draft with the configured drafter (retrieve, draft, check): messages per second;
- IMAP sync into SQLite and PostgreSQL, when ``evals/bench_sync.py`` is present;
- queue, statistics and conversation pages' queries over 100,000 conversations in SQLite and PostgreSQL
  (``evals/bench_scale.py``; ``--scale N`` or ``REPLYDESK_BENCH_SCALE=N`` for another size, 0 to skip).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.settings import Settings
from evals.prepare import DATASETS_DIR, read_jsonl

SEED = 7
INDEX_SIZE = 100_000
QUERIES = 200


def _messages(count: int) -> list[dict[str, Any]]:
    """Buyer messages from the eval sets, repeated up to `count` so every run measures the same work."""
    pool: list[dict[str, Any]] = []
    for name in ("buyer_messages", "language", "drafts"):
        path = DATASETS_DIR / f"{name}.jsonl"
        if path.is_file():
            pool.extend(read_jsonl(path))
    if not pool:
        pool = [{"id": "x", "text": "Where is my order? It has not arrived yet.", "language": "en"}]
    return [pool[i % len(pool)] for i in range(count)]


def _rate(count: int, action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return count / max(time.perf_counter() - started, 1e-9)


def bench_compliance(texts: Sequence[str]) -> float:
    from engine.compliance import check_reply

    timings = []
    for text in texts:
        started = time.perf_counter()
        check_reply(text, buyer_language="en", reply_language="en")
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def bench_retrieval(embedder: Any, queries: Sequence[str], size: int = INDEX_SIZE) -> dict[str, float]:
    """Search latency over `size` indexed answers; vectors are random unit vectors (encoding 100k texts would
    measure the encoder, not the index), queries are real messages encoded per search."""
    from engine.nlp.index import AnswerIndex, IndexedItem

    rng = np.random.default_rng(SEED)
    vectors = rng.standard_normal((size, embedder.dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    languages = ("en", "de", "fr", "it", "es", "ja")
    items = [
        IndexedItem(id=i, question=f"q{i}", answer=f"a{i}", intent="order_status", language=languages[i % 6])
        for i in range(1, size + 1)
    ]
    index = AnswerIndex(embedder)
    started = time.perf_counter()
    index.add_embedded(items, vectors)
    build_seconds = time.perf_counter() - started
    timings = []
    for query in queries:
        started = time.perf_counter()
        index.search(query, k=5, language="en")
        timings.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": statistics.median(timings),
        "p95_ms": float(np.percentile(timings, 95)),
        "build_s": build_seconds,
    }


def bench_drafts(components: Any, rows: Sequence[dict[str, Any]]) -> float:
    from engine.drafting.protocols import DraftRequest, OrderContext

    analyses = components.analyze_many([r["text"] for r in rows], [r.get("marketplace") for r in rows])
    requests = [
        DraftRequest(
            text=r["text"],
            language=a.language.language,
            intent=a.intent.intent,
            marketplace=r.get("marketplace"),
            order=OrderContext(order_id=r.get("order_id")),
        )
        for r, a in zip(rows, analyses, strict=True)
    ]
    return _rate(len(requests), lambda: [components.draft(request) for request in requests])


def bench_sync_if_present(n: int) -> dict[str, Any] | str:
    if importlib.util.find_spec("evals.bench_sync") is None:
        return "evals/bench_sync.py is not present"
    from evals import bench_sync as module

    try:
        result: dict[str, Any] = module.bench_sync(n)
    except Exception as exc:  # a missing Dovecot or PostgreSQL must not hide the other numbers
        return f"{exc.__class__.__name__}: {exc}"
    return result


def bench_scale_rows(conversations: int) -> list[tuple[str, str, str]]:
    from evals.bench_scale import bench_scale, table_rows

    try:
        return table_rows(bench_scale(conversations))
    except Exception as exc:  # a missing PostgreSQL must not hide the other numbers
        return [("Database scale", "not measured", f"{exc.__class__.__name__}: {exc}")]


def markdown_table(rows: Sequence[tuple[str, str, str]]) -> str:
    lines = ["| Measure | Result | Notes |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages for the throughput measures")
    parser.add_argument("--sync", type=int, default=2000, help="mails for the IMAP sync measure (0: skip)")
    parser.add_argument(
        "--scale",
        type=int,
        default=int(os.environ.get("REPLYDESK_BENCH_SCALE", "100000")),
        help="conversations for the database scale measure (0: skip; default REPLYDESK_BENCH_SCALE or 100000)",
    )
    args = parser.parse_args(argv)

    from engine.components import build_components

    settings = Settings.from_env()
    print(f"building components ({settings.nlp_backend} NLP backend) …", file=sys.stderr)
    components = build_components(settings)
    messages = _messages(args.messages)
    texts = [m["text"] for m in messages]
    rows: list[tuple[str, str, str]] = []

    print("classify vs raw encode (evals/bench_intent.py) …", file=sys.stderr)
    from evals.bench_intent import bench_intent
    from evals.bench_intent import table_rows as intent_rows

    rows.extend(intent_rows(bench_intent(args.messages)))
    print("compliance …", file=sys.stderr)
    rows.append(("Compliance check", f"{bench_compliance(texts[:500]):.2f} ms median", "per reply, all rules"))
    from evals.bench_compliance import rows as compliance_rows

    rows.extend(compliance_rows())
    print(f"retrieval over {INDEX_SIZE:,} answers …", file=sys.stderr)
    retrieval = bench_retrieval(components.embedder, texts[:QUERIES])
    rows.append(
        (
            f"Retrieval top-5 over {INDEX_SIZE:,} past answers",
            f"{retrieval['median_ms']:.1f} ms median",
            f"p95 {retrieval['p95_ms']:.1f} ms, query encoding included; index built in {retrieval['build_s']:.1f} s",
        )
    )
    print("drafts …", file=sys.stderr)
    drafter = getattr(components.drafter, "name", "default")
    rate = bench_drafts(components, messages[:300])
    rows.append((f"Draft ({drafter} drafter)", f"{rate:.0f} msg/s", "retrieve + draft + compliance check"))
    if args.sync:
        print(f"IMAP sync of {args.sync} mails …", file=sys.stderr)
        sync = bench_sync_if_present(args.sync)
        if isinstance(sync, str):
            rows.append(("IMAP sync", "not measured", sync))
        else:
            for backend in ("sqlite", "postgresql"):
                if isinstance(sync.get(backend), dict):
                    rows.append(
                        (
                            f"IMAP sync into {backend}",
                            f"{sync[backend]['messages_per_s']:.0f} msg/s",
                            f"{sync['n']} mails",
                        )
                    )
    if args.scale:
        print(f"database scale: {args.scale:,} conversations …", file=sys.stderr)
        rows.extend(bench_scale_rows(args.scale))
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

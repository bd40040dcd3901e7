"""The suites that run several pipeline stages: retrieval, drafts, latency per stage, and online decisions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.errors import InputError, ReplyDeskError
from evals import metrics as m
from evals.suites import WORST_CASES, Dataset, EvalContext, SuiteResult, prefixed, sample

RETRIEVAL_K = 5
FAST_CORPUS_PER_INTENT = 25
FULL_LATENCY_MESSAGES = 100
ONLINE_GROUPS = ("intent", "language", "drafter", "template_id")


# -- retrieval --------------------------------------------------------------------------------------


def ranking_metrics(ranked: Sequence[Sequence[int]], relevant: Sequence[set[int]]) -> dict[str, float]:
    return {
        "count": float(len(ranked)),
        "hit_at_1": m.hit_rate_at_k(ranked, relevant, 1),
        f"hit_at_{RETRIEVAL_K}": m.hit_rate_at_k(ranked, relevant, RETRIEVAL_K),
        f"recall_at_{RETRIEVAL_K}": m.recall_at_k(ranked, relevant, RETRIEVAL_K),
        f"precision_at_{RETRIEVAL_K}": m.precision_at_k(ranked, relevant, RETRIEVAL_K),
        "mrr": m.mean_reciprocal_rank(ranked, relevant),
        f"ndcg_at_{RETRIEVAL_K}": m.ndcg_at_k(ranked, relevant, RETRIEVAL_K),
    }


class PrimedEmbedder:
    """Wraps an embedder; texts embedded ahead of time in one batch are served from memory.

    The index embeds each query on its own; priming all queries in one batch gives the same vectors at a
    fraction of the cost, so the retrieval suite measures ranking quality, not per-call model overhead.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_name = getattr(inner, "model_name", type(inner).__name__)
        self._cache: dict[str, np.ndarray] = {}

    @property
    def dimension(self) -> int:
        return int(self.inner.dimension)

    def prime(self, texts: Sequence[str]) -> None:
        fresh = sorted({t for t in texts if t not in self._cache})
        for text, vector in zip(fresh, self.inner.embed(fresh) if fresh else [], strict=True):
            self._cache[text] = vector

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self._cache]
        if missing:
            self.prime(missing)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32, copy=False)


def _answer_index(items: Sequence[Any], embedder: Any, queries: Sequence[dict[str, Any]]) -> Any:
    from engine.nlp.index import AnswerIndex

    primed = PrimedEmbedder(embedder)
    primed.prime([q["text"] for q in queries])
    index = AnswerIndex(primed)
    index.add(list(items))
    return index


def _search_all(ctx: EvalContext, index: Any, queries: Sequence[dict[str, Any]], label: str) -> list[list[Any]]:
    bar = ctx.progress_bar(label, len(queries))
    hits = []
    for query in queries:
        hits.append(index.search(query["text"], k=RETRIEVAL_K, language=query.get("language"), intent=None))
        bar.advance()
    bar.close()
    return hits


def _retrieval_details(
    queries: Sequence[dict[str, Any]],
    hits: Sequence[Sequence[Any]],
    relevant: Sequence[set[int]],
    gold: list[str],
) -> dict[str, Any]:
    found = [bool({h.knowledge_id for h in top[:RETRIEVAL_K]} & rel) for top, rel in zip(hits, relevant, strict=True)]
    misses = [i for i, ok in enumerate(found) if not ok][:WORST_CASES]
    return {
        "by_length": m.accuracy_by_length([q["text"] for q in queries], found),
        "worst": [
            {
                "id": queries[i]["id"],
                "text": queries[i]["text"],
                "gold": gold[i],
                "predicted": hits[i][0].question if hits[i] else "(nothing retrieved)",
                "score": hits[i][0].score if hits[i] else 0.0,
            }
            for i in misses
        ],
    }


def _bitext_retrieval(ctx: EvalContext, dataset: Dataset, result: SuiteResult) -> None:
    """Held-out Bitext messages against an index of the training part: relevant = same Bitext intent."""
    from engine.nlp.index import IndexedItem
    from evals.prepare import load_bitext_rows

    corpus_rows = [r for r in load_bitext_rows() if not r.heldout]
    if ctx.fast:
        chosen = {r["id"] for r in _per_group(corpus_rows, FAST_CORPUS_PER_INTENT, ctx.seed)}
        corpus_rows = [row for row in corpus_rows if row.id in chosen]
    items = [
        IndexedItem(id=i, question=r.text, answer=r.response, intent=r.intent, language="en", marketplace=None)
        for i, r in enumerate(corpus_rows, start=1)
    ]
    by_intent: dict[str, set[int]] = {}
    for item, row in zip(items, corpus_rows, strict=True):
        by_intent.setdefault(row.bitext_intent, set()).add(item.id)
    queries = sample(dataset.records, ctx.limit("retrieval"), ctx.seed, "bitext_intent")
    index = _answer_index(items, ctx.components.embedder, queries)
    hits = _search_all(ctx, index, queries, f"retrieval {dataset.name}")
    ranked = [[h.knowledge_id for h in found] for found in hits]
    relevant = [by_intent.get(q.get("bitext_intent", ""), set()) for q in queries]
    result.metrics.update(prefixed("retrieval", dataset.name, ranking_metrics(ranked, relevant)))
    details = _retrieval_details(queries, hits, relevant, [q.get("bitext_intent", "") for q in queries])
    details["corpus"] = len(items)
    result.details[dataset.name] = details
    result.datasets[dataset.name] = dataset.info(len(queries))


def _per_group(rows: Sequence[Any], per_group: int, seed: int) -> list[dict[str, Any]]:
    records = [{"id": r.id, "group": r.bitext_intent} for r in rows]
    groups = {r["group"] for r in records}
    return sample(records, per_group * len(groups), seed, "group")


def _answer_retrieval(ctx: EvalContext, dataset: Dataset, result: SuiteResult) -> None:
    """Each question against an index of every reference answer in the set: relevant = its own answer."""
    from engine.nlp.index import IndexedItem

    records = [r for r in dataset.records if r.get("reference")]
    if not records:
        raise InputError(f"{dataset.path} has no 'reference' answers to retrieve; add them or use another set.")
    item_of = {r["id"]: i for i, r in enumerate(records, start=1)}
    items = [
        IndexedItem(
            id=item_of[r["id"]],
            question=r["reference"],
            answer=r["reference"],
            intent=r.get("intent") or "product_question",
            language=r.get("language") or "en",
            marketplace=r.get("marketplace"),
        )
        for r in records
    ]
    queries = sample(records, ctx.limit("retrieval"), ctx.seed, None)
    index = _answer_index(items, ctx.components.embedder, queries)
    hits = _search_all(ctx, index, queries, f"retrieval {dataset.name}")
    ranked = [[h.knowledge_id for h in found] for found in hits]
    relevant = [{item_of[q["id"]]} for q in queries]
    result.metrics.update(prefixed("retrieval", dataset.name, ranking_metrics(ranked, relevant)))
    details = _retrieval_details(queries, hits, relevant, [q["reference"] for q in queries])
    details["corpus"] = len(items)
    result.details[dataset.name] = details
    result.datasets[dataset.name] = dataset.info(len(queries))


def run_retrieval(ctx: EvalContext) -> SuiteResult:
    result = SuiteResult("retrieval")
    for dataset in ctx.datasets("bitext_heldout", "product_qa"):
        if dataset.records and "bitext_intent" in dataset.records[0]:
            _bitext_retrieval(ctx, dataset, result)
        else:
            _answer_retrieval(ctx, dataset, result)
    return result


# -- drafts -----------------------------------------------------------------------------------------


def _draft_request(row: dict[str, Any], language: str, intent: str) -> Any:
    from engine.drafting.protocols import DraftRequest, OrderContext

    return DraftRequest(
        text=row["text"],
        language=language,
        intent=intent,
        marketplace=row.get("marketplace"),
        buyer_name=row.get("buyer_name"),
        product_title=row.get("product_title"),
        order=OrderContext(order_id=row.get("order_id")),
    )


def run_drafts(ctx: EvalContext) -> SuiteResult:
    result = SuiteResult("drafts")
    components = ctx.components
    for dataset in ctx.datasets("drafts"):
        rows = sample(dataset.records, ctx.limit("drafts"), ctx.seed, "intent")
        bar = ctx.progress_bar(f"drafts {dataset.name}", len(rows))
        outcomes: list[dict[str, Any]] = []
        for row in rows:
            analysis = components.analyze(row["text"], row.get("marketplace"))
            draft, verdict = components.draft(_draft_request(row, analysis.language.language, analysis.intent.intent))
            written = draft.text.strip()
            outcomes.append(
                {
                    "row": row,
                    "intent": analysis.intent.intent,
                    "draft": draft.text,
                    "action": draft.action,
                    "allowed": verdict.allowed,
                    "rules": sorted({v.rule for v in verdict.blocking}),
                    "draft_language": components.language.detect(written).language if written else "",
                }
            )
            bar.advance()
        bar.close()
        _score_drafts(ctx, dataset, rows, outcomes, result)
    return result


def _score_drafts(
    ctx: EvalContext,
    dataset: Dataset,
    rows: list[dict[str, Any]],
    outcomes: list[dict[str, Any]],
    result: SuiteResult,
) -> None:
    expected_action = ["no_response_needed" if r.get("intent") == "no_response_needed" else "reply" for r in rows]
    replies = [o for o, action in zip(outcomes, expected_action, strict=True) if action == "reply"]
    with_reference = [o for o in replies if o["row"].get("reference") and o["draft"].strip()]
    similarity = m.semantic_similarity(
        ctx.components.embedder,
        [o["draft"] for o in with_reference],
        [o["row"]["reference"] for o in with_reference],
    )
    coverage = [m.fact_coverage(o["draft"], o["row"].get("facts") or []) for o in replies]
    language_ok = [o["draft_language"] == o["row"].get("language") for o in replies]
    passed = []
    for outcome, action in zip(outcomes, expected_action, strict=True):
        right_action = outcome["action"] == action
        if action == "reply":
            full = m.fact_coverage(outcome["draft"], outcome["row"].get("facts") or []) == 1.0
            right_action = right_action and outcome["allowed"] and full
            right_action = right_action and outcome["draft_language"] == outcome["row"].get("language")
        passed.append(right_action)
    headline = {
        "count": float(len(rows)),
        "pass_rate": m.rate(passed),
        "action_accuracy": m.accuracy(expected_action, [o["action"] for o in outcomes]),
        "intent_accuracy": m.accuracy([r.get("intent") for r in rows], [o["intent"] for o in outcomes]),
        "allowed_rate": m.rate(o["allowed"] for o in replies),
        "fact_coverage": sum(coverage) / len(coverage) if coverage else 0.0,
        "language_match": m.rate(language_ok),
        "semantic_similarity": sum(similarity) / len(similarity) if similarity else 0.0,
    }
    details: dict[str, Any] = {
        "by_language": m.accuracy_by_group([r.get("language") or "und" for r in rows], passed),
        "by_intent": m.accuracy_by_group([r.get("intent") or "other" for r in rows], passed),
        "by_length": m.accuracy_by_length([r["text"] for r in rows], passed),
    }
    if ctx.judge is not None:
        judged = ctx.judge.score_many([(o["row"], o["draft"]) for o in replies])
        headline.update({f"judge_{k}": v for k, v in judged.means().items()})
        details["judge"] = judged.to_dict()
    failures = [i for i, ok in enumerate(passed) if not ok][:WORST_CASES]
    details["worst"] = [_draft_failure(outcomes[i], expected_action[i]) for i in failures]
    result.metrics.update(prefixed("drafts", dataset.name, headline))
    result.details[dataset.name] = details
    result.datasets[dataset.name] = dataset.info(len(rows))


def _draft_failure(outcome: dict[str, Any], expected_action: str) -> dict[str, Any]:
    row = outcome["row"]
    notes = []
    if outcome["action"] != expected_action:
        notes.append(f"action {outcome['action']}, expected {expected_action}")
    if expected_action == "reply":
        missing = m.missing_facts(outcome["draft"], row.get("facts") or [])
        if missing:
            notes.append("missing " + ", ".join(missing))
        if not outcome["allowed"]:
            notes.append("blocked by " + ", ".join(outcome["rules"]))
        if outcome["draft_language"] != row.get("language"):
            notes.append(f"reply in {outcome['draft_language'] or 'nothing'}, buyer wrote {row.get('language')}")
    return {
        "id": row["id"],
        "text": row["text"],
        "gold": row.get("reference") or expected_action,
        "predicted": outcome["draft"] or outcome["action"],
        "note": "; ".join(notes),
    }


# -- latency ----------------------------------------------------------------------------------------


def run_latency(ctx: EvalContext) -> SuiteResult:
    """Milliseconds per message for each stage, one message at a time (what an agent waits for)."""
    result = SuiteResult("latency")
    components = ctx.components
    for dataset in ctx.datasets("buyer_messages"):
        limit = ctx.limit("latency") or FULL_LATENCY_MESSAGES
        rows = sample(dataset.records, limit, ctx.seed, "language")
        timings: dict[str, list[float]] = {s: [] for s in ("language", "intent", "retrieval", "draft", "compliance")}
        components.analyze_many([rows[0]["text"]], [None])  # warm-up: first call loads lazily built parts
        bar = ctx.progress_bar(f"latency {dataset.name}", len(rows))
        for row in rows:
            started = time.perf_counter()
            language = components.language.detect(row["text"]).language
            timings["language"].append(_elapsed_ms(started))
            started = time.perf_counter()
            intent = components.intents.classify(row["text"], language=language).intent
            timings["intent"].append(_elapsed_ms(started))
            started = time.perf_counter()
            retrieved = components.index.search(row["text"], k=RETRIEVAL_K, language=language, intent=intent)
            timings["retrieval"].append(_elapsed_ms(started))
            request = _draft_request(row, language, intent)
            started = time.perf_counter()
            draft = components.drafter.draft(type(request)(**{**request.__dict__, "retrieved": tuple(retrieved)}))
            timings["draft"].append(_elapsed_ms(started))
            started = time.perf_counter()
            components.check(draft.text, buyer_language=language)
            timings["compliance"].append(_elapsed_ms(started))
            bar.advance()
        bar.close()
        started = time.perf_counter()
        components.analyze_many([r["text"] for r in rows], [r.get("marketplace") for r in rows])
        batch_seconds = max(time.perf_counter() - started, 1e-9)
        headline: dict[str, float] = {
            "count": float(len(rows)),
            "classify_batch_per_s": len(rows) / batch_seconds,
        }
        for stage, values in timings.items():
            summary = m.latency_summary(values)
            headline[f"{stage}_median_ms"] = summary["median_ms"]
            headline[f"{stage}_p95_ms"] = summary["p95_ms"]
        totals = [sum(parts) for parts in zip(*timings.values(), strict=True)]
        headline["total_median_ms"] = m.latency_summary(totals)["median_ms"]
        result.metrics.update(prefixed("latency", dataset.name, headline))
        result.details[dataset.name] = {"stages": {s: m.latency_summary(v) for s, v in timings.items()}}
        result.datasets[dataset.name] = dataset.info(len(rows))
    return result


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


# -- online -----------------------------------------------------------------------------------------


def load_decisions(session: Session, group_by: str = "intent") -> list[m.Decision]:
    """Decided drafts (rejected, or sent with a final text) as `Decision`s grouped by a Draft column."""
    from engine.db.models import Draft

    if group_by not in ONLINE_GROUPS:
        raise InputError(f"Cannot group decisions by {group_by!r}; use one of {', '.join(ONLINE_GROUPS)}.")
    column = getattr(Draft, group_by)
    decided = or_(Draft.status == "rejected", Draft.final_text.is_not(None))
    rows = session.execute(select(Draft.status, Draft.text, Draft.final_text, column).where(decided)).all()
    return [m.Decision(str(s), t or "", f, str(g) if g is not None else "unknown") for s, t, f, g in rows]


def run_online(ctx: EvalContext) -> SuiteResult:
    from engine.db import Database

    result = SuiteResult("online")
    url = ctx.settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        result.skipped = f"no database at {url}; run `replydesk setup` and review some drafts first"
        return result
    db = Database(url)
    try:
        db.check_migrated()
        with db.transaction() as session:
            grouped = {name: load_decisions(session, name) for name in ONLINE_GROUPS}
    except ReplyDeskError as exc:
        result.skipped = str(exc)
        return result
    finally:
        db.dispose()
    overall = m.online_summary(grouped["intent"])
    result.metrics.update(prefixed("online", "database", overall))
    result.details["database"] = {f"by_{name}": m.online_by_group(d) for name, d in grouped.items()}
    result.datasets["database"] = {
        "path": _redacted(url),
        "sha256": "",
        "rows": overall["decided"],
        "used": 0,
    }
    return result


def _redacted(url: str) -> str:
    """The database URL without a password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest

"""Pure evaluation metrics. Inputs are plain sequences; outputs are floats and JSON-ready dicts.

Classification: accuracy, per-class precision/recall/F1, macro-F1, confusion matrix, expected calibration
error with reliability bins. Retrieval: recall@k, hit rate@k, MRR, nDCG@k (binary relevance). Compliance:
block recall, false-block rate, per-rule recall and precision. Drafts: fact coverage, semantic similarity
(through any `Embedder`), language match. Online: acceptance and edit distance of agents' decisions.
Breakdowns: by group (language, marketplace) and by message length (1–2, 3–9, 10+ words).
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.nlp.protocols import Embedder
from engine.workflow.textdiff import normalized_edit_distance

LENGTH_BUCKETS = ("1-2", "3-9", "10+")
# Scripts written without spaces: about two characters make a word, which keeps the buckets comparable.
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_SPACES = re.compile(r"\s+")


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator else 0.0


# -- classification ---------------------------------------------------------------------------------


def accuracy(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> float:
    _same_length(truth, predicted)
    return _ratio(sum(1 for t, p in zip(truth, predicted, strict=True) if t == p), len(truth))


def label_order(truth: Iterable[str], predicted: Iterable[str] = (), preferred: Sequence[str] = ()) -> list[str]:
    """Labels seen in either list: those in `preferred` first (in that order), then the rest sorted."""
    seen = set(truth) | set(predicted)
    return [label for label in preferred if label in seen] + sorted(seen - set(preferred))


def per_class(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support for each label (0 where undefined)."""
    _same_length(truth, predicted)
    pairs = Counter(zip(truth, predicted, strict=True))
    gold = Counter(truth)
    guessed = Counter(predicted)
    table: dict[str, dict[str, float]] = {}
    for label in labels:
        hits = pairs[(label, label)]
        precision = _ratio(hits, guessed[label])
        recall = _ratio(hits, gold[label])
        f1 = _ratio(2 * precision * recall, precision + recall)
        table[label] = {"precision": precision, "recall": recall, "f1": f1, "support": gold[label]}
    return table


def macro_f1(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Mean F1 over `labels` (default: the labels present in `truth`)."""
    chosen = list(labels) if labels is not None else sorted(set(truth))
    if not chosen:
        return 0.0
    table = per_class(truth, predicted, chosen)
    return sum(row["f1"] for row in table.values()) / len(chosen)


def confusion_matrix(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
    """Rows are gold labels, columns predictions, in `labels` order; pairs outside `labels` are ignored."""
    _same_length(truth, predicted)
    position = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for gold, guess in zip(truth, predicted, strict=True):
        if gold in position and guess in position:
            matrix[position[gold]][position[guess]] += 1
    return matrix


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    confidence: float  # mean confidence of the predictions in the bin
    accuracy: float  # share of them that were right

    def to_dict(self) -> dict[str, float]:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "count": self.count,
            "confidence": self.confidence,
            "accuracy": self.accuracy,
        }


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1]; a confidence of exactly 1 falls in the last bin."""
    _same_length(confidences, correct)
    grouped: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for confidence, right in zip(confidences, correct, strict=True):
        clipped = min(max(float(confidence), 0.0), 1.0)
        grouped[min(int(clipped * bins), bins - 1)].append((clipped, bool(right)))
    result = []
    for index in range(bins):
        members = grouped.get(index, [])
        result.append(
            ReliabilityBin(
                lower=index / bins,
                upper=(index + 1) / bins,
                count=len(members),
                confidence=_ratio(sum(c for c, _ in members), len(members)),
                accuracy=_ratio(sum(1 for _, r in members if r), len(members)),
            )
        )
    return result


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Count-weighted mean gap between confidence and accuracy over the reliability bins."""
    table = reliability_bins(confidences, correct, bins)
    total = sum(b.count for b in table)
    return _ratio(sum(b.count * abs(b.confidence - b.accuracy) for b in table), total)


# -- breakdowns -------------------------------------------------------------------------------------


def word_count(text: str) -> int:
    """Words separated by spaces, plus one word per two CJK characters (rounded up)."""
    cjk = len(_CJK_CHAR.findall(text))
    spaced = _CJK_CHAR.sub(" ", text).split()
    return sum(1 for token in spaced if any(ch.isalnum() for ch in token)) + math.ceil(cjk / 2)


def length_bucket(text: str) -> str:
    words = word_count(text)
    if words <= 2:
        return "1-2"
    return "3-9" if words <= 9 else "10+"


def accuracy_by_group(groups: Sequence[str], correct: Sequence[bool]) -> dict[str, dict[str, float]]:
    """Per group: count and accuracy, groups sorted by name."""
    _same_length(groups, correct)
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for group, right in zip(groups, correct, strict=True):
        tally[group][0] += 1
        tally[group][1] += int(bool(right))
    return {g: {"count": n, "accuracy": _ratio(k, n)} for g, (n, k) in sorted(tally.items())}


def accuracy_by_length(texts: Sequence[str], correct: Sequence[bool]) -> dict[str, dict[str, float]]:
    table = accuracy_by_group([length_bucket(t) for t in texts], correct)
    return {bucket: table[bucket] for bucket in LENGTH_BUCKETS if bucket in table}


# -- retrieval --------------------------------------------------------------------------------------


def recall_at_k(ranked: Sequence[Sequence[Hashable]], relevant: Sequence[set[Any]], k: int) -> float:
    """Mean over queries of |top-k ∩ relevant| / |relevant|; queries without relevant items are skipped."""
    scores = [len(set(r[:k]) & rel) / len(rel) for r, rel in zip(ranked, relevant, strict=True) if rel]
    return _ratio(sum(scores), len(scores))


def hit_rate_at_k(ranked: Sequence[Sequence[Hashable]], relevant: Sequence[set[Any]], k: int) -> float:
    """Share of queries with at least one relevant item in the top k."""
    hits = [bool(set(r[:k]) & rel) for r, rel in zip(ranked, relevant, strict=True) if rel]
    return _ratio(sum(hits), len(hits))


def precision_at_k(ranked: Sequence[Sequence[Hashable]], relevant: Sequence[set[Any]], k: int) -> float:
    scores = [len(set(r[:k]) & rel) / k for r, rel in zip(ranked, relevant, strict=True) if rel]
    return _ratio(sum(scores), len(scores))


def mean_reciprocal_rank(ranked: Sequence[Sequence[Hashable]], relevant: Sequence[set[Any]]) -> float:
    scores = []
    for items, rel in zip(ranked, relevant, strict=True):
        if not rel:
            continue
        scores.append(next((1.0 / rank for rank, item in enumerate(items, start=1) if item in rel), 0.0))
    return _ratio(sum(scores), len(scores))


def ndcg_at_k(ranked: Sequence[Sequence[Hashable]], relevant: Sequence[set[Any]], k: int) -> float:
    """Binary-relevance nDCG@k, averaged over queries with at least one relevant item."""
    scores = []
    for items, rel in zip(ranked, relevant, strict=True):
        if not rel:
            continue
        dcg = sum(1.0 / math.log2(rank + 1) for rank, item in enumerate(items[:k], start=1) if item in rel)
        ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(rel)) + 1))
        scores.append(dcg / ideal)
    return _ratio(sum(scores), len(scores))


# -- compliance -------------------------------------------------------------------------------------


def block_recall(gold_blocked: Sequence[bool], predicted_blocked: Sequence[bool]) -> float:
    """Share of replies that must be blocked and were."""
    pairs = [p for g, p in zip(gold_blocked, predicted_blocked, strict=True) if g]
    return _ratio(sum(pairs), len(pairs))


def false_block_rate(gold_blocked: Sequence[bool], predicted_blocked: Sequence[bool]) -> float:
    """Share of acceptable replies that were blocked anyway (what costs agents time)."""
    pairs = [p for g, p in zip(gold_blocked, predicted_blocked, strict=True) if not g]
    return _ratio(sum(pairs), len(pairs))


def per_rule(gold_rules: Sequence[set[str]], found_rules: Sequence[set[str]]) -> dict[str, dict[str, float]]:
    """Per rule: support (cases labelled with it), recall, and precision over the cases it fired on."""
    _same_length(gold_rules, found_rules)
    names = sorted(set().union(*gold_rules, *found_rules)) if gold_rules else []
    table: dict[str, dict[str, float]] = {}
    for rule in names:
        support = sum(1 for g in gold_rules if rule in g)
        fired = sum(1 for f in found_rules if rule in f)
        hits = sum(1 for g, f in zip(gold_rules, found_rules, strict=True) if rule in g and rule in f)
        table[rule] = {
            "support": support,
            "fired": fired,
            "recall": _ratio(hits, support),
            "precision": _ratio(hits, fired),
        }
    return table


# -- drafts -----------------------------------------------------------------------------------------


def _folded(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def fact_coverage(text: str, facts: Sequence[str]) -> float:
    """Share of `facts` found in `text` (case- and whitespace-insensitive); 1.0 when none are required."""
    if not facts:
        return 1.0
    haystack = _folded(text)
    return sum(1 for fact in facts if _folded(fact) in haystack) / len(facts)


def missing_facts(text: str, facts: Sequence[str]) -> list[str]:
    haystack = _folded(text)
    return [fact for fact in facts if _folded(fact) not in haystack]


def semantic_similarity(embedder: Embedder, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
    """Cosine similarity of each candidate with its reference (embeddings are L2-normalised); 0 for empty."""
    _same_length(candidates, references)
    if not candidates:
        return []
    vectors = embedder.embed([*candidates, *references])
    left, right = vectors[: len(candidates)], vectors[len(candidates) :]
    cosines = np.sum(left * right, axis=1)
    return [
        float(c) if a.strip() and b.strip() else 0.0 for c, a, b in zip(cosines, candidates, references, strict=True)
    ]


def rate(flags: Iterable[bool]) -> float:
    values = [bool(f) for f in flags]
    return _ratio(sum(values), len(values))


# -- latency ----------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]; 0 for no values."""
    if not values:
        return 0.0
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def latency_summary(milliseconds: Sequence[float]) -> dict[str, float]:
    return {
        "count": len(milliseconds),
        "median_ms": statistics.median(milliseconds) if milliseconds else 0.0,
        "p95_ms": percentile(milliseconds, 95),
        "mean_ms": statistics.fmean(milliseconds) if milliseconds else 0.0,
    }


# -- online: what agents did with the drafts --------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    status: str  # the draft's status
    text: str  # as drafted
    final_text: str | None  # as sent; None while not sent
    group: str = ""  # e.g. the intent, language or drafter, for a breakdown


def online_summary(decisions: Sequence[Decision]) -> dict[str, float]:
    """Acceptance rate (sent unchanged), edit and reject rates, and edit distance of what was sent.

    Same definitions as the Statistics page (`engine.services.stats`): a draft is decided when it was
    rejected or has a sent text; it is unchanged when the sent text equals the draft up to surrounding
    whitespace; edit distance is normalised (0 unchanged, 1 rewritten) and averaged over sent drafts.
    """
    distances = []
    accepted = edited = rejected = 0
    for decision in decisions:
        if decision.status == "rejected":
            rejected += 1
            continue
        if decision.final_text is None:
            continue  # not sent yet: not decided
        drafted, sent = decision.text.strip(), decision.final_text.strip()
        if drafted == sent:
            accepted += 1
            distances.append(0.0)
        else:
            edited += 1
            distances.append(normalized_edit_distance(drafted, sent))
    decided = accepted + edited + rejected
    return {
        "decided": decided,
        "acceptance_rate": _ratio(accepted, decided),
        "edit_rate": _ratio(edited, decided),
        "reject_rate": _ratio(rejected, decided),
        "mean_edit_distance": statistics.fmean(distances) if distances else 0.0,
        "median_edit_distance": statistics.median(distances) if distances else 0.0,
    }


def online_by_group(decisions: Sequence[Decision]) -> dict[str, dict[str, float]]:
    grouped: dict[str, list[Decision]] = defaultdict(list)
    for decision in decisions:
        grouped[decision.group or "unknown"].append(decision)
    return {group: online_summary(members) for group, members in sorted(grouped.items())}


def rounded(value: Any, digits: int = 4) -> Any:
    """Floats rounded recursively, so reports diff cleanly."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, Mapping):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def _same_length(a: Sequence[Any], b: Sequence[Any]) -> None:
    if len(a) != len(b):
        raise ValueError(f"expected sequences of equal length, got {len(a)} and {len(b)}")

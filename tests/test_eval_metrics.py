"""The eval metrics, checked against small hand-computed tables."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from engine.nlp.splits import HELDOUT_PERCENT, example_id, is_heldout, split_bucket
from evals import metrics as m


@pytest.mark.parametrize(
    ("truth", "predicted", "expected"),
    [
        (["a", "b", "c", "a"], ["a", "b", "c", "a"], 1.0),
        (["a", "b", "c", "a"], ["a", "a", "c", "b"], 0.5),
        (["a"], ["b"], 0.0),
        ([], [], 0.0),
    ],
)
def test_accuracy(truth: list[str], predicted: list[str], expected: float) -> None:
    assert m.accuracy(truth, predicted) == pytest.approx(expected)


def test_per_class_and_macro_f1_match_hand_computation() -> None:
    truth = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", "c", "c"]
    table = m.per_class(truth, predicted, ["a", "b", "c"])
    # a: P 2/2 R 2/3; b: P 1/2 R 1/2; c: P 1/2 R 1/1
    assert table["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert table["b"]["f1"] == pytest.approx(0.5)
    assert table["c"]["f1"] == pytest.approx(2 / 3)
    assert m.macro_f1(truth, predicted) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_macro_f1_counts_a_never_predicted_label_as_zero() -> None:
    assert m.macro_f1(["a", "b"], ["a", "a"], ["a", "b"]) == pytest.approx((2 / 3 + 0) / 2)


def test_confusion_matrix_rows_are_gold() -> None:
    matrix = m.confusion_matrix(["a", "a", "b"], ["a", "b", "b"], ["a", "b"])
    assert matrix == [[1, 1], [0, 1]]


def test_label_order_puts_preferred_first() -> None:
    assert m.label_order(["z", "b"], ["a"], preferred=["b", "x"]) == ["b", "a", "z"]


@pytest.mark.parametrize(
    ("confidences", "correct", "expected"),
    [
        ([1.0, 1.0], [True, True], 0.0),  # confident and right: perfectly calibrated
        ([0.9, 0.9], [False, False], 0.9),  # confident and wrong
        ([0.25, 0.25, 0.25, 0.25], [True, False, False, False], 0.0),  # 25 % confident, 25 % right
        ([0.75, 0.35], [True, True], (0.25 + 0.65) / 2),  # two bins, one sample each
    ],
)
def test_expected_calibration_error(confidences: list[float], correct: list[bool], expected: float) -> None:
    assert m.expected_calibration_error(confidences, correct) == pytest.approx(expected)


def test_reliability_bins_cover_the_unit_interval() -> None:
    bins = m.reliability_bins([0.05, 0.55, 1.0], [True, False, True], bins=10)
    assert len(bins) == 10
    assert (bins[0].count, bins[5].count, bins[9].count) == (1, 1, 1)
    assert bins[9].accuracy == 1.0 and bins[5].accuracy == 0.0


@pytest.mark.parametrize(
    ("text", "bucket"),
    [
        ("ok", "1-2"),
        ("still nothing", "1-2"),
        ("ok 👍", "1-2"),
        ("where is my order?", "3-9"),
        ("one two three four five six seven eight nine", "3-9"),
        ("one two three four five six seven eight nine ten", "10+"),
        ("ありがとう", "3-9"),  # five kana: about three words
        ("了解", "1-2"),
    ],
)
def test_length_bucket(text: str, bucket: str) -> None:
    assert m.length_bucket(text) == bucket


def test_accuracy_by_length_keeps_bucket_order() -> None:
    table = m.accuracy_by_length(["a b c d e f g h i j k", "ok", "a b c"], [True, False, True])
    assert list(table) == ["1-2", "3-9", "10+"]
    assert table["1-2"] == {"count": 1, "accuracy": 0.0}


RANKED = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
RELEVANT = [{1}, {6, 5}, {10}]


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (lambda: m.recall_at_k(RANKED, RELEVANT, 1), (1 + 0 + 0) / 3),
        (lambda: m.recall_at_k(RANKED, RELEVANT, 3), (1 + 1 + 0) / 3),
        (lambda: m.hit_rate_at_k(RANKED, RELEVANT, 2), (1 + 1 + 0) / 3),
        (lambda: m.precision_at_k(RANKED, RELEVANT, 3), (1 / 3 + 2 / 3 + 0) / 3),
        (lambda: m.mean_reciprocal_rank(RANKED, RELEVANT), (1 + 1 / 2 + 0) / 3),
        (
            lambda: m.ndcg_at_k(RANKED, RELEVANT, 3),
            (1 + (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3)) + 0) / 3,
        ),
        (lambda: m.recall_at_k([[1]], [set()], 1), 0.0),  # no relevant items: query skipped
    ],
)
def test_ranking_metrics(metric: Callable[[], float], expected: float) -> None:
    assert metric() == pytest.approx(expected)


def test_compliance_rates_and_per_rule() -> None:
    gold = [True, True, False, False, False]
    found = [True, False, True, False, False]
    assert m.block_recall(gold, found) == pytest.approx(0.5)
    assert m.false_block_rate(gold, found) == pytest.approx(1 / 3)
    table = m.per_rule([{"link"}, {"email", "link"}, set()], [{"link"}, {"link"}, {"email"}])
    assert table["link"] == {"support": 2, "fired": 2, "recall": 1.0, "precision": 1.0}
    assert table["email"] == {"support": 1, "fired": 1, "recall": 0.0, "precision": 0.0}


@pytest.mark.parametrize(
    ("text", "facts", "expected"),
    [
        ("Your order 302-1234567-7654321 ships today", ["302-1234567-7654321"], 1.0),
        ("Hello ANNA,  about the Phone\nCase", ["anna", "phone case"], 1.0),
        ("Hello", ["302-1234567-7654321", "Hello"], 0.5),
        ("anything", [], 1.0),
    ],
)
def test_fact_coverage(text: str, facts: list[str], expected: float) -> None:
    assert m.fact_coverage(text, facts) == pytest.approx(expected)
    assert len(m.missing_facts(text, facts)) == round(len(facts) * (1 - expected))


class TableEmbedder:
    """Fixed vectors per text, so similarity is known in advance."""

    dimension = 2

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [0.6, 0.8], "": [1.0, 0.0]}
        return np.array([vectors[t] for t in texts], dtype=np.float32)


def test_semantic_similarity_is_cosine_and_zero_for_empty() -> None:
    scores = m.semantic_similarity(TableEmbedder(), ["a", "a", "c", ""], ["a", "b", "a", "a"])
    assert scores == pytest.approx([1.0, 0.0, 0.6, 0.0])


def test_online_summary_uses_the_statistics_definitions() -> None:
    decisions = [
        m.Decision("approved", "Hello ", "Hello"),  # surrounding whitespace does not count as an edit
        m.Decision("edited", "Hello", "Hallo"),  # one substitution in five characters
        m.Decision("sent", "Hi", "Hey"),
        m.Decision("rejected", "Nope", None),
        m.Decision("pending", "ignored", None),  # not sent: not decided
    ]
    summary = m.online_summary(decisions)
    assert summary["decided"] == 4
    assert summary["acceptance_rate"] == pytest.approx(1 / 4)
    assert summary["edit_rate"] == pytest.approx(2 / 4)
    assert summary["reject_rate"] == pytest.approx(1 / 4)
    assert summary["mean_edit_distance"] == pytest.approx((0 + 0.2 + 2 / 3) / 3)


def test_online_by_group() -> None:
    groups = m.online_by_group([m.Decision("approved", "a", "a", "de"), m.Decision("rejected", "b", None, "en")])
    assert groups["de"]["acceptance_rate"] == 1.0 and groups["en"]["reject_rate"] == 1.0


def test_latency_summary() -> None:
    summary = m.latency_summary([1.0, 2.0, 3.0, 4.0, 100.0])
    assert summary["median_ms"] == 3.0
    assert summary["p95_ms"] == pytest.approx(80.8)


def test_unequal_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="equal length"):
        m.accuracy(["a"], [])


def test_split_is_stable_and_about_the_configured_share() -> None:
    texts = [f"where is my order number {i}" for i in range(2000)]
    share = sum(is_heldout(t) for t in texts) / len(texts)
    assert abs(share - HELDOUT_PERCENT / 100) < 0.03
    # Case and spacing do not move a text to the other side.
    assert split_bucket("Cancel my  order") == split_bucket("cancel my order")
    assert example_id("bitext", "Cancel my order") == example_id("bitext", " cancel my order ")

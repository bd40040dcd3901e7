"""The intent decision rules (primary, runner-up, review flag), the fitted review threshold and the training
vector cache: pure functions and small files, no model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from engine.nlp.embeddings import HashingEmbedder
from engine.nlp.intent import OTHER_MARGIN, REVIEW_THRESHOLD_GRID, decide, fit_review_threshold
from engine.nlp.vector_cache import CachedEmbedder

LABELS = ("cancel_order", "complaint_feedback", "order_status", "other")


@pytest.mark.parametrize(
    ("row", "threshold", "expected"),
    [
        # A clear request: kept, not flagged, runner-up reported.
        ([0.05, 0.15, 0.75, 0.05], 0.5, ("order_status", False, "complaint_feedback")),
        # Below the threshold: the guess stays, flagged for review.
        ([0.10, 0.35, 0.40, 0.15], 0.5, ("order_status", True, "complaint_feedback")),
        # `other` without enough margin over the runner-up: the runner-up is primary, flagged.
        ([0.05, 0.05, 0.40, 0.50], 0.3, ("order_status", True, "other")),
        # `other` with positive evidence (a clear margin) stays `other`.
        ([0.05, 0.05, 0.10, 0.80], 0.5, ("other", False, "order_status")),
        # Ties keep the label order: deterministic.
        ([0.25, 0.25, 0.25, 0.25], 0.2, ("cancel_order", False, "complaint_feedback")),
    ],
)
def test_decide_follows_the_labelling_rules(
    row: list[float], threshold: float, expected: tuple[str, bool, str]
) -> None:
    guess = decide(LABELS, np.array(row), threshold)
    assert (guess.intent, guess.needs_review, guess.secondary) == expected
    assert guess.score == pytest.approx(row[LABELS.index(guess.intent)], abs=1e-4)
    assert set(guess.scores) >= set(LABELS) and sum(guess.scores.values()) == pytest.approx(1.0, abs=1e-3)


def test_other_margin_is_a_strict_boundary() -> None:
    just_below = np.array([0.0, 0.0, 0.4, 0.4 + OTHER_MARGIN - 0.01])
    just_above = np.array([0.0, 0.0, 0.35, 0.35 + OTHER_MARGIN + 0.01])
    assert decide(LABELS, just_below / just_below.sum(), 0.0).intent == "order_status"
    assert decide(LABELS, just_above / just_above.sum(), 0.0).intent == "other"


def _rows(confident_right: int, unsure_wrong: int, unsure_right: int) -> tuple[np.ndarray, list[int]]:
    """Confident right answers (0.9), then unsure ones (0.4) that are wrong or right; truth is column 2."""
    right, wrong = [0.02, 0.06, 0.9, 0.02], [0.4, 0.3, 0.28, 0.02]
    unsure_ok = [0.3, 0.28, 0.4, 0.02]
    rows = [right] * confident_right + [wrong] * unsure_wrong + [unsure_ok] * unsure_right
    return np.array(rows), [2] * len(rows)


def test_review_threshold_is_the_lowest_that_reaches_the_target() -> None:
    probabilities, truth = _rows(90, 10, 0)  # 90 % right; all mistakes score 0.4
    threshold = fit_review_threshold(probabilities, truth, LABELS, target=0.95, max_share=0.2)
    assert threshold == pytest.approx(0.41)  # flags exactly the ten mistakes
    assert threshold in REVIEW_THRESHOLD_GRID


def test_review_threshold_never_flags_more_than_the_cap() -> None:
    probabilities, truth = _rows(70, 15, 15)  # the unsure 30 % cannot all be flagged under a 10 % cap
    threshold = fit_review_threshold(probabilities, truth, LABELS, target=0.99, max_share=0.1)
    assert threshold == pytest.approx(0.40)  # the highest that flags none of the 30 % at 0.4
    flagged = sum(1 for row in probabilities if decide(LABELS, row, threshold).needs_review)
    assert flagged / len(probabilities) <= 0.1


def test_vector_cache_embeds_each_text_once_and_survives_a_restart(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    class Counting(HashingEmbedder):
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            calls.append(list(texts))
            return super().embed(texts)

    first = CachedEmbedder(Counting(32), tmp_path, "hashing")
    vectors = first.embed(["a", "b", "a"])
    assert calls == [["a", "b"]] and vectors.shape == (3, 32)
    first.save()
    second = CachedEmbedder(Counting(32), tmp_path, "hashing")
    again = second.embed(["b", "c"])
    assert calls[-1] == ["c"]
    assert np.array_equal(again[0], vectors[1])


def test_a_damaged_vector_cache_is_rebuilt(tmp_path: Path) -> None:
    cache = CachedEmbedder(HashingEmbedder(32), tmp_path, "hashing")
    cache.path.write_bytes(b"not a numpy file")
    rebuilt = CachedEmbedder(HashingEmbedder(32), tmp_path, "hashing")
    assert rebuilt.embed(["x"]).shape == (1, 32)

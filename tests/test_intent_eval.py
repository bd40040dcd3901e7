"""The intent eval on real-style messages: a folder of per-language files read as one data set, flagged share,
selective accuracy and per-language macro-F1, tracked by the gate (fake NLP backend)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.errors import InputError
from engine.nlp.protocols import IntentGuess
from engine.settings import Settings
from evals.gate import tracking_rule
from evals.prepare import DATASETS_DIR
from evals.suites import EvalContext, abstention_metrics, load_dataset, run_suites

REALSTYLE = DATASETS_DIR / "realstyle"
MAIN_LANGUAGES = ("de", "en", "es", "fr", "it", "ja")


def _analysis(intent: str, needs_review: bool) -> Any:
    return SimpleNamespace(intent=IntentGuess(intent=intent, score=0.5, needs_review=needs_review))


def test_abstention_metrics_count_only_what_is_not_flagged() -> None:
    rows = [{"intent": "order_status", "language": "de"}] * 10 + [{"intent": "other", "language": "en"}] * 2
    analyses = [_analysis("order_status", False)] * 8 + [_analysis("other", True)] * 2
    analyses += [_analysis("order_status", True), _analysis("cancel_order", False)]
    values = abstention_metrics(rows, analyses)
    assert values["needs_review_rate"] == pytest.approx(3 / 12)
    assert values["selective_accuracy"] == pytest.approx(8 / 9)  # the unflagged cancel_order is wrong
    assert values["macro_f1_de"] == pytest.approx(2 * 0.8 / 1.8)  # recall 0.8, precision 1 on order_status
    assert "macro_f1_en" not in values  # fewer than ten messages: too noisy to track


def test_a_folder_is_one_data_set_in_file_order(tmp_path: Path) -> None:
    folder = tmp_path / "realstyle"
    folder.mkdir()
    for language in ("fr", "de"):
        row = {"id": f"rs-{language}-1", "text": "x", "language": language, "intent": "other"}
        (folder / f"{language}.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    dataset = load_dataset(folder)
    assert dataset.name == "realstyle" and [r["language"] for r in dataset.records] == ["de", "fr"]
    (folder / "de.jsonl").write_text("", encoding="utf-8")
    assert load_dataset(folder).sha256 != dataset.sha256
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"no \.jsonl"):
        load_dataset(empty)


def test_realstyle_set_is_well_formed() -> None:
    from engine.taxonomy import INTENTS, MARKETPLACES

    dataset = load_dataset(REALSTYLE)
    assert len({r["id"] for r in dataset.records}) == len(dataset.records)
    for row in dataset.records:
        assert set(row) >= {"id", "text", "language", "intent", "marketplace"}
        assert row["intent"] in INTENTS and row["marketplace"] in MARKETPLACES and row["text"].strip()
    per_language = {lang: sum(1 for r in dataset.records if r["language"] == lang) for lang in MAIN_LANGUAGES}
    assert min(per_language.values()) >= 100, per_language


def test_realstyle_set_never_overlaps_training_examples() -> None:
    from engine.nlp.training_data import dedupe_key, load_team_examples

    training = {dedupe_key(e.text) for e in load_team_examples()}
    overlap = [r["id"] for r in load_dataset(REALSTYLE).records if dedupe_key(r["text"]) in training]
    assert overlap == []


def test_intent_suite_scores_the_realstyle_set(settings: Settings, fake_components: Any) -> None:
    context = EvalContext(settings=settings, fast=True, progress=False, components_factory=lambda _: fake_components)
    [result] = run_suites("intent", context)
    metrics = result.metrics
    assert 0.0 <= metrics["intent.realstyle.selective_accuracy"] <= 1.0
    assert 0.0 <= metrics["intent.realstyle.needs_review_rate"] <= 1.0
    assert {f"intent.realstyle.macro_f1_{lang}" for lang in MAIN_LANGUAGES} <= set(metrics)
    assert result.datasets["realstyle"]["rows"] >= 600


@pytest.mark.parametrize(
    ("metric", "higher_is_better"),
    [
        ("intent.realstyle.selective_accuracy", True),
        ("intent.realstyle.needs_review_rate", False),
        ("intent.realstyle.macro_f1_ja", True),
        ("intent.realstyle.macro_f1", True),
    ],
)
def test_the_gate_tracks_the_realstyle_metrics(metric: str, higher_is_better: bool) -> None:
    rule = tracking_rule(metric)
    assert rule is not None and rule.higher_is_better is higher_is_better

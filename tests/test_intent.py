"""Intent classification: training data, the blended model, its artifacts, the keyword fallback, the eval set."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InputError, ModelError
from engine.nlp.embeddings import HashingEmbedder
from engine.nlp.intent import (
    EVAL_SET,
    REVIEW_THRESHOLD_GRID,
    TEMPERATURE_GRID,
    IntentModel,
    calibration_fold,
    evaluate,
    fit_temperature,
    normalise_message,
    sharpen,
)
from engine.nlp.intent_keywords import KeywordIntentClassifier
from engine.nlp.splits import is_heldout
from engine.nlp.training_data import (
    PUBLIC_DATA_DIR,
    Example,
    dedupe_key,
    load_bitext_examples,
    load_labelled_jsonl,
    load_product_qa_examples,
    load_team_examples,
    merge_examples,
)
from engine.taxonomy import INTENTS, LANGUAGES, MARKETPLACES, load_taxonomy
from tests.conftest import REPO_ROOT

FIXED_NOW = datetime(2026, 11, 27, 3, 10, tzinfo=UTC)
EVAL_LANGUAGES = ("de", "fr", "it", "es", "ja")


@pytest.fixture(scope="module")
def team_examples() -> list[Example]:
    return load_team_examples()


@pytest.fixture(scope="module")
def model(team_examples: list[Example]) -> IntentModel:
    return IntentModel.train(team_examples, HashingEmbedder(256), now=FIXED_NOW)


# -- team examples and the eval set ------------------------------------------------------------------------------


def test_team_examples_cover_every_language_and_intent(team_examples: list[Example]) -> None:
    counts = Counter((e.language, e.intent) for e in team_examples)
    for language in LANGUAGES:
        floor = 15 if language in ("en", *EVAL_LANGUAGES) else 10
        thin = [i for i in INTENTS if counts[(language, i)] < floor]
        assert not thin, f"{language}: fewer than {floor} examples for {thin}"


def test_eval_set_is_well_formed_and_large_enough() -> None:
    rows = [json.loads(line) for line in EVAL_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert set(row) == {"id", "text", "language", "intent", "marketplace"}
        assert row["intent"] in INTENTS and row["language"] in LANGUAGES and row["marketplace"] in MARKETPLACES
    per_intent = Counter(r["intent"] for r in rows if r["language"] in EVAL_LANGUAGES)
    assert {i: per_intent[i] for i in INTENTS if per_intent[i] < 30} == {}
    assert any(r["language"] == "en" for r in rows)


def test_eval_set_does_not_overlap_training_examples(team_examples: list[Example]) -> None:
    training = {dedupe_key(e.text) for e in team_examples}
    overlap = [e.text for e in load_labelled_jsonl(EVAL_SET) if dedupe_key(e.text) in training]
    assert overlap == []


# -- training data sources ---------------------------------------------------------------------------------------


def test_team_loader_names_the_bad_line(tmp_path: Path) -> None:
    (tmp_path / "de.jsonl").write_text('{"text": "wo ist es", "intent": "order_status"}\n{"text": "x"}\n', "utf-8")
    with pytest.raises(InputError, match=r"de\.jsonl line 2"):
        load_team_examples(tmp_path)


def test_team_loader_rejects_unknown_intents(tmp_path: Path) -> None:
    (tmp_path / "en.jsonl").write_text('{"text": "hi", "intent": "greeting"}\n', "utf-8")
    with pytest.raises(InputError, match="unknown intent 'greeting'"):
        load_team_examples(tmp_path)


def test_bitext_is_mapped_and_unmapped_intents_are_dropped(tmp_path: Path) -> None:
    (tmp_path / "bitext").mkdir()
    (tmp_path / "bitext_to_taxonomy.csv").write_text(
        "bitext_intent,intent\ntrack_order,order_status\ncomplaint,complaint_feedback\n", "utf-8"
    )
    (tmp_path / "bitext" / "Bitext_Sample_Customer_Support_Training_Dataset.csv").write_text(
        "instruction,intent,response\n"
        'where is order 123?,track_order,"It is on its way.\nSecond line."\n'
        "I want to complain,complaint,Sorry\n"
        "what is the cancellation fee,check_cancellation_fee,None\n",
        "utf-8",
    )
    examples = load_bitext_examples(tmp_path, include_heldout=True)
    assert [(e.text, e.intent, e.source) for e in examples] == [
        ("where is order 123?", "order_status", "bitext"),
        ("I want to complain", "complaint_feedback", "bitext"),
    ]
    training = load_bitext_examples(tmp_path)
    assert [e.text for e in training] == [e.text for e in examples if not is_heldout(e.text)]


def test_training_never_sees_the_held_out_bitext_split() -> None:
    everything = load_bitext_examples(include_heldout=True)
    training = load_bitext_examples()
    held_out = [e for e in everything if is_heldout(e.text)]
    assert held_out and len(training) == len(everything) - len(held_out)
    assert not any(is_heldout(e.text) for e in training)


def test_product_qa_questions_are_distinct_and_limited(tmp_path: Path) -> None:
    (tmp_path / "product_qa").mkdir()
    (tmp_path / "product_qa" / "hetPQA_answer_generation_train.tsv").write_text(
        "ASIN\tquestion\tcandidate\tanswer\tsource\n"
        "A1\tis it waterproof?\tyes\tyes\tCQA\n"
        "A2\tIs it waterproof?\tno\tno\tCQA\n"
        "A3\thow long is the cable?\t2m\t2m\tCQA\n",
        "utf-8",
    )
    examples = load_product_qa_examples(tmp_path, limit=5)
    assert [e.text for e in examples] == ["is it waterproof?", "how long is the cable?"]
    assert {e.intent for e in examples} == {"product_question"}
    assert len(load_product_qa_examples(tmp_path, limit=1)) == 1


def test_merge_prefers_corrections_over_team_over_public_data() -> None:
    bitext = Example("Where is my order?", "order_status", "en", "bitext")
    team = Example("where is my  order?", "complaint_feedback", "en", "team")
    correction = Example("WHERE IS MY ORDER?", "other", "en", "correction")
    assert merge_examples([bitext], [team]) == [team]
    assert merge_examples([correction], [team], [bitext]) == [correction]


def test_public_data_sets_ship_inside_the_repository_with_their_licences() -> None:
    assert PUBLIC_DATA_DIR.is_relative_to(REPO_ROOT)
    for licence in ("bitext/LICENSE.txt", "product_qa/LICENSE"):
        assert "Community Data License Agreement – Sharing – Version 1.0" in (PUBLIC_DATA_DIR / licence).read_text(
            encoding="utf-8"
        )
    assert len(load_bitext_examples(include_heldout=True)) > 4000
    assert len(load_product_qa_examples(limit=None)) > 1000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://www.amazon.de/gp/your-orders now", "see link now"),
        ("Order 302-1234567-7654321 ??", "Order ordernumber ??"),
        ("tracking 1Z999AA10123456784", "tracking 1Z999AA 0000 "),
    ],
)
def test_normalise_message_replaces_links_and_numbers(text: str, expected: str) -> None:
    assert normalise_message(text) == expected.strip()


# -- the blended model -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "de", "ja"])
def test_every_intent_is_predicted_for_its_clearest_examples(
    model: IntentModel, team_examples: list[Example], language: str
) -> None:
    clearest: dict[str, Example] = {}
    for example in team_examples:
        if example.language == language:
            clearest.setdefault(example.intent, example)
    guesses = model.classify_many([e.text for e in clearest.values()], [language] * len(clearest))
    predicted = {intent: guess.intent for intent, guess in zip(clearest, guesses, strict=True)}
    assert predicted == {intent: intent for intent in clearest}
    assert set(clearest) == set(INTENTS)


def test_scores_are_probabilities_over_every_intent(model: IntentModel) -> None:
    guess = model.classify("Wo ist mein Paket? Immer noch nicht da", language="de")
    assert set(guess.scores) == set(INTENTS)
    assert sum(guess.scores.values()) == pytest.approx(1.0, abs=1e-3)
    assert guess.score == max(guess.scores.values())


def test_classify_many_matches_classify(model: IntentModel) -> None:
    texts = ["ok danke", "Please cancel my order", "La facture svp"]
    languages = ["de", "en", "fr"]
    assert model.classify_many(texts, languages) == [
        model.classify(t, language=lang) for t, lang in zip(texts, languages, strict=True)
    ]


def test_training_is_deterministic(team_examples: list[Example], model: IntentModel) -> None:
    assert model.version == f"20261127T031000Z-{model.data_hash[:8]}"
    subset = team_examples[::6]
    first, second = (IntentModel.train(subset, HashingEmbedder(256), now=FIXED_NOW) for _ in range(2))
    assert first.version == second.version != model.version
    texts = ["ist das wasserdicht?", "返品したいです", "still nothing"]
    assert np.array_equal(first.probabilities(texts), second.probabilities(texts))


# -- calibration -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "temperature", "expected"),
    [
        ([0.5, 0.3, 0.2], 1.0, [0.5, 0.3, 0.2]),
        ([0.6, 0.4], 0.5, [0.6923, 0.3077]),  # squared, renormalised
        ([0.6, 0.4], 2.0, [0.5505, 0.4495]),  # square-rooted, renormalised
        ([0.25, 0.25, 0.5], 0.25, [0.0556, 0.0556, 0.8889]),
    ],
)
def test_sharpen_rescales_and_keeps_rows_summing_to_one(
    row: list[float], temperature: float, expected: list[float]
) -> None:
    scaled = sharpen(np.array([row]), temperature)
    assert scaled[0] == pytest.approx(expected, abs=1e-4)
    assert int(np.argmax(scaled[0])) == int(np.argmax(row))


def test_fit_temperature_sharpens_an_under_confident_model_and_softens_an_over_confident_one() -> None:
    # Always right with 0.6: the best temperature pushes the score up, to the sharpest grid point.
    under = np.tile([0.6, 0.2, 0.2], (50, 1))
    assert fit_temperature(under, [0] * 50) == TEMPERATURE_GRID[0]
    # Right half of the time with 0.95: the fitted temperature softens (above 1).
    over = np.tile([0.95, 0.05], (50, 1))
    assert fit_temperature(over, [0] * 25 + [1] * 25) > 1.0


def test_only_trusted_examples_are_held_out_for_calibration() -> None:
    team = Example("wo ist mein paket", "order_status", "de", "team")
    public = Example("where is my order", "order_status", "en", "bitext")
    assert calibration_fold(team) in (0, 1, 2) and calibration_fold(team) == calibration_fold(team)
    assert calibration_fold(public) == -1


def test_trained_model_is_calibrated_and_keeps_its_temperature(model: IntentModel, tmp_path: Path) -> None:
    # The blend of two regularised models is under-confident on held-out team examples: it gets sharpened.
    assert model.temperature in TEMPERATURE_GRID and model.temperature < 1.0
    uncalibrated = dataclasses.replace(model, temperature=1.0)
    text = ["Wo bleibt mein Paket"]
    assert model.probabilities(text).argmax() == uncalibrated.probabilities(text).argmax()
    model.save(tmp_path)
    assert IntentModel.load(tmp_path, HashingEmbedder(256)).temperature == model.temperature


def test_low_confidence_is_flagged_for_review(model: IntentModel) -> None:
    strict = dataclasses.replace(model, review_threshold=1.01)
    guess = strict.classify("Bitte stornieren Sie meine Bestellung")
    assert guess.needs_review and guess.intent == "cancel_order"
    relaxed = dataclasses.replace(model, review_threshold=0.0)
    assert not relaxed.classify("Bitte stornieren Sie meine Bestellung").needs_review


def test_guesses_carry_the_runner_up_and_empty_messages_are_other(model: IntentModel) -> None:
    guess = model.classify("Bitte stornieren Sie meine Bestellung")
    assert guess.secondary in INTENTS and guess.secondary != guess.intent
    assert guess.scores[guess.secondary] == max(v for k, v in guess.scores.items() if k != guess.intent)
    empty = model.classify("   ")
    assert (empty.intent, empty.needs_review, empty.score) == ("other", True, 0.0)


def test_trained_model_fits_its_review_threshold(model: IntentModel) -> None:
    assert model.review_threshold in REVIEW_THRESHOLD_GRID


def test_evaluate_reports_accuracy_macro_f1_and_confusion(model: IntentModel) -> None:
    examples = [
        Example("Please cancel my order", "cancel_order", "en", "eval"),
        Example("ok thanks", "no_response_needed", "en", "eval"),
        Example("ok thanks", "complaint_feedback", "en", "eval"),
    ]
    report = evaluate(model, examples)
    assert report["count"] == 3
    assert report["accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    assert report["confusion"] == {"complaint_feedback": {"no_response_needed": 1}}
    assert report["per_class"]["cancel_order"]["f1"] == 1.0
    assert report["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 0.0) / 3, abs=1e-3)


# -- artifacts ---------------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(model: IntentModel, tmp_path: Path) -> None:
    folder = model.save(tmp_path)
    assert folder == tmp_path / model.version
    assert (tmp_path / "current").read_text(encoding="utf-8").strip() == model.version
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version"] == model.version and manifest["data_hash"] == model.data_hash
    assert manifest["counts"]["source"] == {"team": sum(manifest["counts"]["intent"].values())}

    loaded = IntentModel.load(tmp_path, HashingEmbedder(256))
    texts = ["Wo bleibt mein Paket", "facture svp", "保証期間は？", "???"]
    assert loaded.version == model.version
    assert loaded.classify_many(texts) == model.classify_many(texts)


def test_missing_artifact_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"run `replydesk train-intents`"):
        IntentModel.load(tmp_path / "models", HashingEmbedder(256))


def test_incompatible_embedder_says_how_to_fix(model: IntentModel, tmp_path: Path) -> None:
    model.save(tmp_path)
    with pytest.raises(ModelError, match=r"128.*run `replydesk train-intents`|256.*run `replydesk train-intents`"):
        IntentModel.load(tmp_path, HashingEmbedder(128))


def test_broken_artifact_says_how_to_fix(model: IntentModel, tmp_path: Path) -> None:
    folder = model.save(tmp_path)
    (folder / "model.joblib").write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"cannot be read.*run `replydesk train-intents`"):
        IntentModel.load(tmp_path, HashingEmbedder(256))


# -- keyword fallback --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Please cancel my order", "cancel_order"),
        ("Bitte stornieren, danke", "cancel_order"),
        ("Où est mon colis ? toujours rien", "order_status"),
        ("Il prodotto è arrivato rotto", "damaged_defective"),
        ("Necesito la factura con IVA", "invoice_vat"),
        ("返品したいです", "return_refund"),
        ("保証期間はどのくらいですか", "warranty"),
        ("Mir wurde doppelt abgebucht, Zahlung prüfen", "payment_pricing"),
        ("ok thanks", "no_response_needed"),
        ("ありがとうございました", "no_response_needed"),
        ("Ist das mit dem iPhone kompatibel?", "product_question"),
        ("Terrible service, I want to complain", "complaint_feedback"),
        ("Siparişim nerede?", "order_status"),
    ],
)
def test_keyword_classifier_table(text: str, intent: str) -> None:
    guess = KeywordIntentClassifier().classify(text)
    assert guess.intent == intent
    assert set(guess.scores) == set(INTENTS)


def test_keyword_classifier_sends_unknown_text_to_review() -> None:
    guess = KeywordIntentClassifier().classify("xyzzy")
    assert (guess.intent, guess.needs_review) == ("other", True)


def test_taxonomy_languages_have_team_files() -> None:
    folder = Path(__file__).resolve().parent.parent / "knowledge" / "intents"
    assert sorted(p.stem for p in folder.glob("*.jsonl")) == sorted(load_taxonomy().languages)


# -- the real embedding model ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_embedder_reaches_the_floor_on_buyer_messages() -> None:
    from engine.nlp.embeddings import SentenceTransformerEmbedder

    examples = merge_examples(load_team_examples(), load_bitext_examples())
    model = IntentModel.train(examples, SentenceTransformerEmbedder())
    report = evaluate(model, load_labelled_jsonl(EVAL_SET))
    assert report["macro_f1"] >= 0.80, report

"""Intent classification of buyer messages.

`IntentModel` blends two linear models and averages their probabilities:

- logistic regression on sentence embeddings (any `Embedder`; the packaged model is English), and
- logistic regression on character n-grams (TF-IDF, ``char_wb`` 2–5), which carries the other languages,
  typos and short in-thread replies such as "still nothing" or "immer noch nichts".

For a message whose language is known not to be English the character model gets more weight, because the
English embedding model understands little of it.

Deciding (`decide`, the labelling guide's rules): the primary intent is the actionable request. ``other`` needs
positive evidence: when it does not beat the runner-up by `OTHER_MARGIN`, the runner-up is the primary intent
and the message is flagged. Below `review_threshold` the guess is kept but flagged ``needs_review`` (abstain
rather than guess); the agent sees the top two intents. An empty message is ``other``, flagged.

The blend of two regularised models is under-confident (its top probability is right far more often than it
says), so `train` fits a temperature on out-of-fold predictions for the team examples and sharpens the blend with
it; scores, thresholds and the eval's calibration error then speak of the same probability. The review threshold
is fitted on the same out-of-fold predictions: the lowest one whose unflagged part reaches
`TARGET_SELECTIVE_ACCURACY`, flagging at most `MAX_REVIEW_SHARE`.

`engine.nlp.intent_keywords.KeywordIntentClassifier` is the deterministic, training-free baseline.

Artifacts: ``<models dir>/<version>/model.joblib`` + ``manifest.json``, and ``<models dir>/current`` (a text file
naming the version in use). joblib files are pickles: load only artifacts this installation wrote.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from engine.errors import ModelError
from engine.nlp.protocols import Embedder, IntentClassifier, IntentGuess
from engine.nlp.training_data import REPO_ROOT, Example, load_all_examples, load_labelled_jsonl
from engine.nlp.vector_cache import CachedEmbedder
from engine.taxonomy import INTENTS

ARTIFACT_FORMAT = 2  # 2: review threshold fitted on held-out predictions, `other` margin
MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "current"
EVAL_SET = REPO_ROOT / "evals" / "datasets" / "buyer_messages.jsonl"
TRAIN_FIX = "run `replydesk train-intents` to train and save one"
EMBEDDING_CACHE_DIR = "embedding-cache"  # under the models folder: training vectors kept between trainings

DEFAULT_REVIEW_THRESHOLD = 0.45  # used when there are too few team examples to fit one
OTHER_MARGIN = 0.2
TARGET_SELECTIVE_ACCURACY = 0.93
MAX_REVIEW_SHARE = 0.12
REVIEW_THRESHOLD_GRID = tuple(round(0.2 + 0.01 * step, 2) for step in range(61))  # 0.20 … 0.80
# Share of the embedding model in the blend, for English / unknown language and for other languages.
EMBEDDING_WEIGHT = 0.5
EMBEDDING_WEIGHT_NON_ENGLISH = 0.2  # chosen by 5-fold CV on non-English team examples
# Inverse regularisation strengths of the two logistic regressions.
EMBEDDING_C = 8.0
CHAR_C = 20.0
# `other` is a sink when it carries a full share: ten of Bitext's intents (accounts, newsletter, "talk to a
# human", "place an order") map to it, so it learns "generic English customer-service request" and wins on any
# request the model has not seen. A smaller share (with `OTHER_MARGIN`) makes it need positive evidence.
OTHER_CLASS_WEIGHT = 0.6
# Realistic, hand-written messages count more than the clean public templates.
SOURCE_WEIGHTS = {"correction": 4.0, "team": 3.0, "product_qa": 0.5, "bitext": 1.0}
MAX_CHARS = 1500  # long pastes add nothing but cost; the buyer's own words come first
# Temperature scaling: the hand-written (trusted) examples are split into folds, each scored by models trained
# on everything else; the temperature minimising their log loss is kept. The public sets stay in every fold's
# training data: they are template-like and would make the blend look better calibrated than it is on traffic.
CALIBRATION_FOLDS = 3
CALIBRATION_SOURCES = frozenset({"correction", "team"})
MIN_CALIBRATION_EXAMPLES = 60
TEMPERATURE_GRID = tuple(round(0.2 + 0.02 * step, 2) for step in range(66))  # 0.20 … 1.50

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_ORDER_ID = re.compile(r"\b\d{3}-\d{7}-\d{7}\b")
_LONG_NUMBER = re.compile(r"\d{5,}")
_SPACES = re.compile(r"\s+")


def normalise_message(text: str) -> str:
    """Replace links, order ids and long numbers by placeholders so they do not look like content words."""
    text = _URL.sub(" link ", text[:MAX_CHARS])
    text = _ORDER_ID.sub(" ordernumber ", text)
    text = _LONG_NUMBER.sub(" 0000 ", text)
    return _SPACES.sub(" ", text).strip()


def embedder_name(embedder: Embedder) -> str:
    """The embedder's `model_name` (as the embeddings module sets it), else its class name."""
    for attribute in ("model_name", "name"):
        name = getattr(embedder, attribute, None)
        if isinstance(name, str) and name:
            return name
    return type(embedder).__name__


def data_hash(examples: Sequence[Example], seed: int) -> str:
    digest = hashlib.sha256(f"format={ARTIFACT_FORMAT};seed={seed}\n".encode())
    for line in sorted(f"{e.source}\t{e.intent}\t{e.language}\t{e.text}" for e in examples):
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def balanced_weights(examples: Sequence[Example]) -> np.ndarray:
    """Per-example weight: the source's trust, rescaled so every intent carries the same total weight, except
    ``other``, which carries `OTHER_CLASS_WEIGHT` of it (see that constant)."""
    raw = np.array([SOURCE_WEIGHTS.get(e.source, 1.0) for e in examples], dtype=np.float64)
    totals: dict[str, float] = {}
    for example, weight in zip(examples, raw, strict=True):
        totals[example.intent] = totals.get(example.intent, 0.0) + float(weight)
    share = raw.sum() / len(totals)
    scale = {
        intent: (OTHER_CLASS_WEIGHT if intent == "other" else 1.0) * share / total for intent, total in totals.items()
    }
    return np.array([w * scale[e.intent] for e, w in zip(examples, raw, strict=True)])


def sharpen(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Rows of `probabilities` raised to ``1 / temperature`` and renormalised (temperature < 1 sharpens)."""
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return np.asarray(scaled / scaled.sum(axis=1, keepdims=True))


def fit_temperature(probabilities: np.ndarray, truth: Sequence[int]) -> float:
    """The grid temperature with the lowest log loss of the true columns `truth`; ties go to the smaller one."""
    rows = np.arange(len(truth))
    losses = [
        float(-np.mean(np.log(np.clip(sharpen(probabilities, t)[rows, list(truth)], 1e-12, 1.0))))
        for t in TEMPERATURE_GRID
    ]
    return TEMPERATURE_GRID[int(np.argmin(losses))]


def calibration_fold(example: Example, folds: int = CALIBRATION_FOLDS) -> int:
    """Stable fold number (hashed from the text), or -1 for an example that is never held out."""
    if example.source not in CALIBRATION_SOURCES:
        return -1
    return int(hashlib.sha256(example.text.encode("utf-8")).hexdigest(), 16) % folds


@dataclass(frozen=True)
class _Components:
    """The two fitted models of one blend."""

    embedding_classifier: LogisticRegression
    char_vectorizer: TfidfVectorizer
    char_classifier: LogisticRegression

    def blended(self, vectors: np.ndarray, texts: Sequence[str], languages: Sequence[str | None]) -> np.ndarray:
        """Untempered blend; the embedding model's share depends on the language (see EMBEDDING_WEIGHT)."""
        shares = [EMBEDDING_WEIGHT if lang in (None, "en") else EMBEDDING_WEIGHT_NON_ENGLISH for lang in languages]
        weight = np.array(shares)[:, None]
        from_embeddings = self.embedding_classifier.predict_proba(vectors)
        from_chars = self.char_classifier.predict_proba(self.char_vectorizer.transform(texts))
        return np.asarray(weight * from_embeddings + (1.0 - weight) * from_chars)


def _fit_components(
    vectors: np.ndarray, texts: Sequence[str], targets: Sequence[str], weights: np.ndarray, seed: int
) -> _Components:
    embedding_classifier = LogisticRegression(C=EMBEDDING_C, max_iter=2000, random_state=seed)
    embedding_classifier.fit(vectors, targets, sample_weight=weights)
    char_vectorizer = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), lowercase=True, sublinear_tf=True, min_df=1, dtype=np.float32
    )
    char_features = char_vectorizer.fit_transform(texts)
    char_classifier = LogisticRegression(C=CHAR_C, max_iter=3000, random_state=seed)
    char_classifier.fit(char_features, targets, sample_weight=weights)
    return _Components(embedding_classifier, char_vectorizer, char_classifier)


def out_of_fold_probabilities(
    examples: Sequence[Example], vectors: np.ndarray, texts: Sequence[str], seed: int
) -> tuple[np.ndarray, list[int]] | None:
    """Untempered blended probabilities of each trusted example from a model trained without it, and the
    column of its true intent (columns: the sorted intents of `examples`); None when there are too few."""
    folds = [calibration_fold(e) for e in examples]
    if sum(1 for f in folds if f >= 0) < MIN_CALIBRATION_EXAMPLES:
        return None
    column = {label: position for position, label in enumerate(sorted({e.intent for e in examples}))}
    held_out: list[np.ndarray] = []
    truth: list[int] = []
    for fold in range(CALIBRATION_FOLDS):
        train = [i for i, f in enumerate(folds) if f != fold]
        test = [i for i, f in enumerate(folds) if f == fold]
        targets = [examples[i].intent for i in train]
        if not test or len(set(targets)) < 2:
            continue
        weights = balanced_weights([examples[i] for i in train])
        components = _fit_components(vectors[train], [texts[i] for i in train], targets, weights, seed)
        partial = components.blended(vectors[test], [texts[i] for i in test], [examples[i].language for i in test])
        full = np.zeros((len(test), len(column)))  # an intent missing from this fold's training scores 0
        full[:, [column[str(label)] for label in components.embedding_classifier.classes_]] = partial
        held_out.append(full)
        truth.extend(column[examples[i].intent] for i in test)
    return (np.vstack(held_out), truth) if held_out else None


def fit_review_threshold(
    probabilities: np.ndarray,
    truth: Sequence[int],
    labels: Sequence[str],
    *,
    target: float = TARGET_SELECTIVE_ACCURACY,
    max_share: float = MAX_REVIEW_SHARE,
) -> float:
    """The lowest grid threshold whose unflagged predictions are right at least `target` of the time, as long
    as it flags at most `max_share` (else the highest threshold that does); flags as `decide` sets them."""
    decisions = [decide(labels, row, 0.0) for row in probabilities]
    scores = np.array([g.score for g in decisions])
    right = np.array([g.intent == labels[t] for g, t in zip(decisions, truth, strict=True)])
    forced = np.array([g.needs_review for g in decisions])  # `other` without margin: flagged at any threshold
    within_cap = REVIEW_THRESHOLD_GRID[0]
    for threshold in REVIEW_THRESHOLD_GRID:
        flagged = forced | (scores < threshold)
        if flagged.mean() > max_share:
            break
        within_cap = threshold
        kept = right[~flagged]
        if kept.size and kept.mean() >= target:
            return threshold
    return within_cap


def decide(
    labels: Sequence[str], row: np.ndarray, review_threshold: float, other_margin: float = OTHER_MARGIN
) -> IntentGuess:
    """The guess for one row of probabilities (in `labels` order), by the rules in the module docs."""
    scores = {intent: 0.0 for intent in INTENTS}
    scores.update({label: round(float(p), 4) for label, p in zip(labels, row, strict=True)})
    ranked = [int(i) for i in np.argsort(-row, kind="stable")]
    primary, runner_up = ranked[0], ranked[1] if len(ranked) > 1 else None
    needs_review = float(row[primary]) < review_threshold
    if labels[primary] == "other" and runner_up is not None and row[primary] - row[runner_up] < other_margin:
        primary, runner_up, needs_review = runner_up, primary, True
    return IntentGuess(
        intent=labels[primary],
        score=round(float(row[primary]), 4),
        needs_review=needs_review,
        scores=scores,
        secondary=labels[runner_up] if runner_up is not None else None,
    )


@dataclass
class IntentModel:
    """Implements `IntentClassifier`. Build with `train` or `load`, never by hand."""

    version: str
    embedder_name: str
    embedder: Embedder
    labels: tuple[str, ...]
    embedding_classifier: LogisticRegression
    char_vectorizer: TfidfVectorizer
    char_classifier: LogisticRegression
    data_hash: str
    counts: dict[str, dict[str, int]]
    review_threshold: float = DEFAULT_REVIEW_THRESHOLD
    other_margin: float = OTHER_MARGIN
    metrics: dict[str, Any] = field(default_factory=dict)
    temperature: float = 1.0

    @classmethod
    def train(
        cls,
        examples: Sequence[Example],
        embedder: Embedder,
        *,
        seed: int = 0,
        now: datetime | None = None,
        calibrate: bool = True,
        training_embedder: Embedder | None = None,
    ) -> IntentModel:
        """Fit both models on all `examples`; with `calibrate`, also fit the temperature and the review
        threshold on out-of-fold predictions (see module docs)."""
        intents_seen = {e.intent for e in examples}
        if len(intents_seen) < 2:
            raise ModelError("Intent training needs examples of at least two intents; add examples and retry.")
        texts = [normalise_message(e.text) for e in examples]
        targets = [e.intent for e in examples]
        weights = balanced_weights(examples)

        vectors = np.asarray((training_embedder or embedder).embed(texts))  # e.g. a `CachedEmbedder`
        components = _fit_components(vectors, texts, targets, weights, seed)
        labels = tuple(str(label) for label in components.embedding_classifier.classes_)
        temperature, review_threshold = 1.0, DEFAULT_REVIEW_THRESHOLD
        held_out = out_of_fold_probabilities(examples, vectors, texts, seed) if calibrate else None
        if held_out is not None:
            probabilities, truth = held_out
            temperature = fit_temperature(probabilities, truth)
            review_threshold = fit_review_threshold(sharpen(probabilities, temperature), truth, labels)

        hashed = data_hash(examples, seed)
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        counts = {
            "intent": dict(sorted(Counter(targets).items())),
            "source": dict(sorted(Counter(e.source for e in examples).items())),
            "language": dict(sorted(Counter(e.language or "und" for e in examples).items())),
        }
        return cls(
            version=f"{stamp}-{hashed[:8]}",
            embedder_name=embedder_name(embedder),
            embedder=embedder,
            labels=labels,
            embedding_classifier=components.embedding_classifier,
            char_vectorizer=components.char_vectorizer,
            char_classifier=components.char_classifier,
            data_hash=hashed,
            counts=counts,
            temperature=temperature,
            review_threshold=review_threshold,
        )

    # -- prediction -------------------------------------------------------------------------------------------

    def probabilities(self, texts: Sequence[str], languages: Sequence[str | None] | None = None) -> np.ndarray:
        """Blended, temperature-scaled probabilities, shape (len(texts), len(self.labels)), in `self.labels` order."""
        return self._probabilities([normalise_message(t) for t in texts], languages)

    def _probabilities(self, cleaned: Sequence[str], languages: Sequence[str | None] | None) -> np.ndarray:
        if languages is not None and len(languages) != len(cleaned):
            raise ValueError("languages must be as long as texts")
        langs = languages if languages is not None else [None] * len(cleaned)
        components = _Components(self.embedding_classifier, self.char_vectorizer, self.char_classifier)
        blended = components.blended(np.asarray(self.embedder.embed(cleaned)), cleaned, langs)
        return sharpen(blended, self.temperature)

    def classify(self, text: str, *, language: str | None = None) -> IntentGuess:
        return self.classify_many([text], [language])[0]

    def classify_many(self, texts: Sequence[str], languages: Sequence[str | None] | None = None) -> list[IntentGuess]:
        """One embedding batch for all texts. Empty messages are `other`, flagged for review."""
        if not texts:
            return []
        cleaned = [normalise_message(t) for t in texts]
        probabilities = self._probabilities(cleaned, languages)
        return [
            decide(self.labels, row, self.review_threshold, self.other_margin) if text else _empty_guess()
            for text, row in zip(cleaned, probabilities, strict=True)
        ]

    # -- artifacts --------------------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "version": self.version,
            "data_hash": self.data_hash,
            "embedder_name": self.embedder_name,
            "embedder_dimension": int(self.embedder.dimension),
            "labels": list(self.labels),
            "review_threshold": self.review_threshold,
            "other_margin": self.other_margin,
            "temperature": self.temperature,
            "sklearn_version": sklearn.__version__,
            "counts": self.counts,
            "metrics": self.metrics,
        }

    def save(self, directory: Path) -> Path:
        """Write ``directory/<version>/`` and point ``directory/current`` at it; returns the version folder."""
        target = directory / self.version
        target.mkdir(parents=True, exist_ok=True)
        state = {
            "format": ARTIFACT_FORMAT,
            "embedding_classifier": self.embedding_classifier,
            "char_vectorizer": self.char_vectorizer,
            "char_classifier": self.char_classifier,
        }
        joblib.dump(state, target / MODEL_FILE, compress=3)
        (target / MANIFEST_FILE).write_text(json.dumps(self.manifest(), indent=2, sort_keys=True), "utf-8")
        # Written last and atomically, so a crash mid-save leaves the previous model in use.
        pointer = directory / f".{CURRENT_FILE}.tmp"
        pointer.write_text(self.version + "\n", encoding="utf-8")
        pointer.replace(directory / CURRENT_FILE)
        return target

    @classmethod
    def load(cls, directory: Path, embedder: Embedder) -> IntentModel:
        pointer = directory / CURRENT_FILE
        if not pointer.is_file():
            raise ModelError(f"No intent model found in {directory}; {TRAIN_FIX}.")
        version = pointer.read_text(encoding="utf-8").strip()
        target = directory / version
        try:
            manifest = json.loads((target / MANIFEST_FILE).read_text(encoding="utf-8"))
            state = joblib.load(target / MODEL_FILE)
        except Exception as exc:  # unpickling a damaged or foreign file raises almost any type
            raise ModelError(f"The intent model {version} in {directory} cannot be read ({exc}); {TRAIN_FIX}.") from exc
        problem = _incompatibility(manifest, state, embedder)
        if problem:
            raise ModelError(f"The intent model {version} in {directory} {problem}; {TRAIN_FIX}.")
        return cls(
            version=manifest["version"],
            embedder_name=manifest["embedder_name"],
            embedder=embedder,
            labels=tuple(manifest["labels"]),
            embedding_classifier=state["embedding_classifier"],
            char_vectorizer=state["char_vectorizer"],
            char_classifier=state["char_classifier"],
            data_hash=manifest["data_hash"],
            counts=manifest["counts"],
            review_threshold=float(manifest["review_threshold"]),
            other_margin=float(manifest["other_margin"]),
            metrics=manifest.get("metrics", {}),
            temperature=float(manifest.get("temperature", 1.0)),  # models saved before calibration: unscaled
        )


def _incompatibility(manifest: dict[str, Any], state: Any, embedder: Embedder) -> str | None:
    if manifest.get("format") != ARTIFACT_FORMAT or not isinstance(state, dict):
        return f"has artifact format {manifest.get('format')}, this version reads {ARTIFACT_FORMAT}"
    if manifest.get("embedder_name") != embedder_name(embedder):
        return f"was trained with embedder {manifest.get('embedder_name')}, not {embedder_name(embedder)}"
    if manifest.get("embedder_dimension") != embedder.dimension:
        return f"expects {manifest.get('embedder_dimension')}-dimensional embeddings, got {embedder.dimension}"
    if set(manifest.get("labels", [])) - set(INTENTS):
        return "uses intents that are no longer in the taxonomy"
    return None


def _empty_guess() -> IntentGuess:
    return IntentGuess(intent="other", score=0.0, needs_review=True, scores={i: 0.0 for i in INTENTS})


# -- training entry point and evaluation -----------------------------------------------------------------------


def train_default_model(
    embedder: Embedder,
    *,
    extra: Sequence[Example] = (),
    include_public: bool = True,
    cache_dir: Path | None = None,
) -> IntentModel:
    """Train on corrections (`extra`), team examples and the public data sets; score it on the eval set.

    With `cache_dir`, training vectors are kept there, so the next training embeds only new examples."""
    examples = load_all_examples(extra=extra, include_public=include_public)
    if cache_dir is None:
        model = IntentModel.train(examples, embedder)
    else:
        cached = CachedEmbedder(embedder, cache_dir, embedder_name(embedder))
        model = IntentModel.train(examples, embedder, training_embedder=cached)
        cached.save()
    if EVAL_SET.exists():
        report = evaluate(model, load_labelled_jsonl(EVAL_SET))
        model.metrics["buyer_messages"] = {k: report[k] for k in ("count", "accuracy", "macro_f1")}
    return model


def evaluate(model: IntentClassifier, examples: Sequence[Example]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the intents present in `examples`, per-class p/r/f1 and a confusion table."""
    texts = [e.text for e in examples]
    languages = [e.language for e in examples]
    batch = getattr(model, "classify_many", None)
    guesses: list[IntentGuess] = (
        batch(texts, languages)
        if callable(batch)
        else [model.classify(t, language=lang) for t, lang in zip(texts, languages, strict=True)]
    )
    truth = [e.intent for e in examples]
    predicted = [g.intent for g in guesses]
    labels = [i for i in INTENTS if i in set(truth)]
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    confusion: dict[str, dict[str, int]] = {}
    for gold, guess in zip(truth, predicted, strict=True):
        if gold != guess:
            confusion.setdefault(gold, {}).setdefault(guess, 0)
            confusion[gold][guess] += 1
    return {
        "count": len(examples),
        "accuracy": round(float(accuracy_score(truth, predicted)), 4) if examples else 0.0,
        "macro_f1": round(float(np.mean(f1)), 4) if labels else 0.0,
        "per_class": {
            label: {
                "precision": round(float(p), 4),
                "recall": round(float(r), 4),
                "f1": round(float(f), 4),
                "support": int(s),
            }
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion": confusion,
        "needs_review": sum(1 for g in guesses if g.needs_review),
    }

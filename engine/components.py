"""The pipeline's pluggable parts, chosen by settings and built once per process.

`nlp_backend = "real"`: fastText + lingua language ID, the packaged sentence-transformers model, a trained
intent model (trained on first use and saved under `data/models/intent`). `"fake"`: the same language ID
(it is fast and offline) with a hashing embedder, for tests and small machines.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.amazon.client import SpApiClient
from engine.compliance import Verdict, check_outgoing
from engine.db.models import KnowledgeItem, TemplateRow
from engine.drafting.default import DefaultDrafter
from engine.drafting.protocols import Drafter, DraftRequest, DraftResult
from engine.drafting.templates import Template, TemplateSet, load_templates
from engine.errors import ModelError
from engine.nlp.embeddings import HashingEmbedder, SentenceTransformerEmbedder
from engine.nlp.index import AnswerIndex, IndexedItem, fingerprint_of
from engine.nlp.intent import IntentModel, train_default_model
from engine.nlp.language import FastTextLanguageDetector
from engine.nlp.protocols import Embedder, IntentClassifier, IntentGuess, LanguageDetector, LanguageGuess
from engine.nlp.training_data import Example
from engine.settings import Settings
from engine.taxonomy import MARKETPLACES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analysis:
    language: LanguageGuess
    intent: IntentGuess


@dataclass(frozen=True)
class Analyzer:
    """Language, then intent with the detected language: all `replydesk classify` needs (no index, no drafter)."""

    language: LanguageDetector
    intents: IntentClassifier

    def analyze_many(self, texts: Sequence[str], marketplaces: Sequence[str | None]) -> list[Analysis]:
        priors = [_default_language(marketplace) for marketplace in marketplaces]
        detect_many = getattr(self.language, "detect_many", None)  # the real detector batches its slow part
        if detect_many is not None:
            languages = list(detect_many(list(texts), priors))
        else:
            languages = [self.language.detect(t, prior=p) for t, p in zip(texts, priors, strict=True)]
        classify_many = getattr(self.intents, "classify_many", None)
        if classify_many is not None:
            intents = classify_many(list(texts), [g.language for g in languages])
        else:
            intents = [self.intents.classify(t, language=g.language) for t, g in zip(texts, languages, strict=True)]
        return [Analysis(lang, intent) for lang, intent in zip(languages, intents, strict=True)]


@dataclass
class Components:
    language: LanguageDetector
    intents: IntentClassifier
    embedder: Embedder
    index: AnswerIndex
    templates: TemplateSet
    drafter: Drafter
    orders: SpApiClient | None = None  # None: order context shows "not connected"

    def analyze_many(self, texts: Sequence[str], marketplaces: Sequence[str | None]) -> list[Analysis]:
        return Analyzer(self.language, self.intents).analyze_many(texts, marketplaces)

    def analyze(self, text: str, marketplace: str | None = None) -> Analysis:
        return self.analyze_many([text], [marketplace])[0]

    def draft(self, request: DraftRequest, *, allow_list: Sequence[str] = ()) -> tuple[DraftResult, Verdict]:
        """Retrieve (when the request has no sources yet), draft, and check the draft."""
        if not request.retrieved:
            retrieved = self.index.search(request.text, k=5, language=request.language, intent=request.intent)
            request = DraftRequest(**{**request.__dict__, "retrieved": tuple(retrieved)})
        result = self.drafter.draft(request)
        verdict = self.check(result.text, buyer_language=request.language, allow_list=allow_list)
        return result, verdict

    def check(self, text: str, *, buyer_language: str | None, allow_list: Sequence[str] = ()) -> Verdict:
        reply_language = self.language.detect(text).language if text.strip() else None
        return check_outgoing(text, buyer_language=buyer_language, reply_language=reply_language, allow_list=allow_list)


def _default_language(marketplace: str | None) -> str | None:
    found = MARKETPLACES.get(marketplace or "")
    return found.default_language if found else None


def build_embedder(settings: Settings) -> Embedder:
    if settings.nlp_backend == "fake":
        return HashingEmbedder()
    return SentenceTransformerEmbedder(settings.embedding_model)


def intent_model_directory(settings: Settings) -> Path:
    return settings.models_dir / ("intent-fake" if settings.nlp_backend == "fake" else "intent")


def load_or_train_intents(settings: Settings, embedder: Embedder, corrections: Sequence[Example] = ()) -> IntentModel:
    directory = intent_model_directory(settings)
    try:
        return IntentModel.load(directory, embedder)
    except ModelError:
        log.info("No intent model in %s yet: training one (about a minute, once).", directory)
    model = train_default_model(embedder, extra=corrections, include_public=settings.nlp_backend == "real")
    model.save(directory)
    return model


def templates_from_db(session: Session, knowledge_dir: Path) -> TemplateSet:
    rows = session.scalars(select(TemplateRow).where(TemplateRow.active.is_(True))).all()
    if not rows:
        return load_templates(knowledge_dir / "templates")
    return TemplateSet(
        Template(id=r.key, intent=r.intent, language=r.language, name=r.name, body=r.body, required=tuple(r.required))
        for r in rows
    )


def knowledge_items(session: Session) -> list[IndexedItem]:
    rows = session.scalars(select(KnowledgeItem).where(KnowledgeItem.active.is_(True))).all()
    return [
        IndexedItem(
            id=r.id,
            question=r.question,
            answer=r.answer,
            intent=r.intent,
            language=r.language,
            marketplace=r.marketplace,
            store_id=r.store_id,
        )
        for r in rows
    ]


def seed_items(knowledge_dir: Path) -> list[IndexedItem]:
    """Seed answers straight from `knowledge/answers/seed.jsonl` (ids: line numbers), for use without a database."""
    items = []
    path = knowledge_dir / "answers" / "seed.jsonl"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            row = json.loads(line)
            items.append(
                IndexedItem(
                    id=number,
                    question=row["question"],
                    answer=row["answer"],
                    intent=row["intent"],
                    language=row["language"],
                    marketplace=row.get("marketplace"),
                )
            )
    return items


def index_directory(settings: Settings, *, from_database: bool) -> Path:
    return settings.models_dir / f"index-{settings.nlp_backend}-{'db' if from_database else 'files'}"


def load_or_build_index(directory: Path, items: Sequence[IndexedItem], embedder: Embedder) -> AnswerIndex:
    """The saved index brought up to date with `items`: only new or changed past answers are embedded.

    A missing or incompatible saved index (another embedding model, say) is rebuilt from scratch.
    """
    try:
        index = AnswerIndex.load(directory, embedder)
    except ModelError:
        index = AnswerIndex(embedder)
    if index.fingerprint != fingerprint_of(items):
        added, removed = index.sync(items)
        log.info("past-answer index: %d added or changed, %d removed", added, removed)
        index.save(directory)
    return index


def build_drafter(settings: Settings, templates: TemplateSet) -> Drafter:
    default = DefaultDrafter(templates)
    if not settings.llm_configured:
        return default
    from engine.drafting.llm import build_llm_drafter

    return build_llm_drafter(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        model=settings.llm_model,
        templates=templates,
        fallback=default,
    )


def build_order_client(settings: Settings) -> SpApiClient | None:
    if not settings.spapi_configured:
        return None
    assert settings.spapi_client_id and settings.spapi_client_secret and settings.spapi_refresh_token
    return SpApiClient.from_credentials(
        settings.spapi_client_id,
        settings.spapi_client_secret,
        settings.spapi_refresh_token,
        region=settings.spapi_region,
        sandbox=settings.spapi_sandbox,
    )


def build_analyzer(settings: Settings) -> Analyzer:
    """Language ID and the intent model only: starts without loading the past-answer index or templates."""
    return Analyzer(FastTextLanguageDetector(), load_or_train_intents(settings, build_embedder(settings)))


@dataclass(frozen=True)
class Knowledge:
    """What components are built from: plain data, read in one short transaction (or from the files), so that
    loading models, training and indexing happen with no transaction open."""

    templates: TemplateSet
    items: list[IndexedItem]
    corrections: list[Example]  # accepted intent corrections, used when an intent model must be trained
    from_database: bool


def read_knowledge(session: Session, knowledge_dir: Path) -> Knowledge:
    from engine.services.knowledge import accepted_examples  # avoids an import cycle at module load

    return Knowledge(
        templates=templates_from_db(session, knowledge_dir),
        items=knowledge_items(session),
        corrections=accepted_examples(session),
        from_database=True,
    )


def file_knowledge(knowledge_dir: Path) -> Knowledge:
    """The files in `knowledge/`, for the stateless CLI commands."""
    return Knowledge(load_templates(knowledge_dir / "templates"), seed_items(knowledge_dir), [], from_database=False)


def build_components(settings: Settings, knowledge: Knowledge | None = None) -> Components:
    """Everything the pipeline needs, from `knowledge` (the files in `knowledge/` when None). Call it with no
    database transaction open: it loads models and may train the intent model."""
    embedder = build_embedder(settings)
    knowledge = knowledge or file_knowledge(settings.knowledge_dir)
    templates = knowledge.templates
    index_dir = index_directory(settings, from_database=knowledge.from_database)
    return Components(
        language=FastTextLanguageDetector(),
        intents=load_or_train_intents(settings, embedder, knowledge.corrections),
        embedder=embedder,
        index=load_or_build_index(index_dir, knowledge.items, embedder),
        templates=templates,
        drafter=build_drafter(settings, templates),
        orders=build_order_client(settings),
    )

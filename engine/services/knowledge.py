"""The knowledge base: past answers, templates and intent examples, seeded from `knowledge/`."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.db.models import IntentExample, KnowledgeItem, TemplateRow
from engine.drafting.templates import load_templates
from engine.errors import InputError
from engine.nlp.training_data import Example
from engine.taxonomy import INTENTS, LANGUAGES


def seed_knowledge(session: Session, knowledge_dir: Path) -> tuple[int, int]:
    """Load seed answers and templates into empty tables; returns (answers added, templates added)."""
    answers = 0
    if not session.scalar(select(func.count()).select_from(KnowledgeItem)):
        path = knowledge_dir / "answers" / "seed.jsonl"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc.msg}). Fix that line.") from None
            if item.get("intent") not in INTENTS or item.get("language") not in LANGUAGES:
                raise InputError(f"{path}:{number}: unknown intent or language. Use the taxonomy's ids.")
            session.add(
                KnowledgeItem(
                    question=item["question"],
                    answer=item["answer"],
                    intent=item["intent"],
                    language=item["language"],
                    marketplace=item.get("marketplace"),
                    source="seed",
                )
            )
            answers += 1
    templates = 0
    if not session.scalar(select(func.count()).select_from(TemplateRow)):
        for template in load_templates(knowledge_dir / "templates"):
            session.add(
                TemplateRow(
                    key=template.id,
                    intent=template.intent,
                    language=template.language,
                    name=template.name,
                    body=template.body,
                    required=list(template.required),
                )
            )
            templates += 1
    session.flush()
    return answers, templates


def accepted_examples(session: Session) -> list[Example]:
    """Intent examples from the queue (agents' corrections, leads' labels of unsure messages) and leads, once
    accepted or added by a lead. All are checked by a person, so all train as the most trusted source."""
    rows = session.scalars(
        select(IntentExample)
        .where(IntentExample.status.in_(("accepted",)) | (IntentExample.source == "manual"))
        .order_by(IntentExample.id)
    ).all()
    return [Example(text=r.text, intent=r.intent, language=r.language, source="correction") for r in rows]

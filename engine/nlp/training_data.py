"""Where intent training examples come from, and how the sources are merged.

Sources, from most to least trusted:

- ``correction``: intents an agent fixed in the review queue (stored in the database; the caller passes them).
- ``team``: hand-written buyer messages in ``knowledge/intents/<language>.jsonl``.
- ``product_qa``: real Amazon shopper questions (amazon-science/contextual-product-qa, hetPQA, CDLA-Sharing-1.0),
  all labelled ``product_question``.
- ``bitext``: the Bitext customer-support sample, mapped onto the taxonomy.

The public data sets live in ``knowledge/public/`` with their licences (see its README), so every clone trains
the same model.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.nlp.splits import is_heldout
from engine.taxonomy import INTENTS, KNOWLEDGE_DIR

REPO_ROOT = KNOWLEDGE_DIR.parent
PUBLIC_DATA_DIR = KNOWLEDGE_DIR / "public"
SOURCES = ("correction", "team", "product_qa", "bitext")
BITEXT_FILE = "Bitext_Sample_Customer_Support_Training_Dataset.csv"
PRODUCT_QA_FILES = ("hetPQA_answer_generation_train.tsv", "hetPQA_answer_generation_dev.tsv")


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    language: str | None
    source: str  # one of SOURCES


def load_team_examples(directory: Path = KNOWLEDGE_DIR / "intents") -> list[Example]:
    """Every ``<language>.jsonl`` file in `directory`: one ``{"text", "intent"}`` object per line.

    The file name gives the language. Blank lines are skipped; a bad line raises InputError naming file and line.
    """
    examples: list[Example] = []
    for path in sorted(directory.glob("*.jsonl")):
        language = path.stem
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text, intent = str(row["text"]).strip(), str(row["intent"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(
                    f"{path.name} line {number} is not a JSON object with 'text' and 'intent' ({exc}); "
                    "fix the line and train again."
                ) from exc
            if intent not in INTENTS:
                raise InputError(
                    f"{path.name} line {number} has unknown intent {intent!r}; use one of: {', '.join(INTENTS)}."
                )
            if text:
                examples.append(Example(text=text, intent=intent, language=language, source="team"))
    return examples


def load_bitext_mapping(data_dir: Path = PUBLIC_DATA_DIR) -> dict[str, str]:
    """Bitext intent -> taxonomy intent, from ``bitext_to_taxonomy.csv``."""
    with (data_dir / "bitext_to_taxonomy.csv").open(encoding="utf-8", newline="") as handle:
        return {row["bitext_intent"]: row["intent"] for row in csv.DictReader(handle) if row["intent"] in INTENTS}


def load_bitext_examples(data_dir: Path = PUBLIC_DATA_DIR, *, include_heldout: bool = False) -> list[Example]:
    """The Bitext customer-support sample (English), mapped onto the taxonomy; unmapped intents are dropped.

    The evals' held-out fifth (`engine.nlp.splits.is_heldout`) is left out unless asked for, so the
    `bitext_heldout` eval never scores a model on its own training data.

    Attribution: "Bitext Sample Customer Support Training Dataset" by Bitext Innovations, licensed under the
    Community Data License Agreement – Sharing – Version 1.0 (CDLA-Sharing-1.0); see
    ``knowledge/public/bitext/LICENSE.txt``. Models trained on it are Results under that licence; any file derived
    from the data must keep this attribution and licence.
    """
    mapping = load_bitext_mapping(data_dir)
    examples: list[Example] = []
    with (data_dir / "bitext" / BITEXT_FILE).open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            intent = mapping.get(row["intent"])
            text = row["instruction"].strip()
            if intent and text and (include_heldout or not is_heldout(text)):
                examples.append(Example(text=text, intent=intent, language="en", source="bitext"))
    return examples


def load_product_qa_examples(data_dir: Path = PUBLIC_DATA_DIR, limit: int | None = 1000) -> list[Example]:
    """Real shopper questions from hetPQA (CDLA-Sharing-1.0), labelled ``product_question``.

    Takes the first `limit` distinct questions in file order (train, then dev), so the selection is stable.
    """
    seen: set[str] = set()
    examples: list[Example] = []
    for name in PRODUCT_QA_FILES:
        path = data_dir / "product_qa" / name
        if not path.exists():
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                question = (row.get("question") or "").strip()
                key = question.lower()
                if not question or key in seen:
                    continue
                seen.add(key)
                examples.append(Example(text=question, intent="product_question", language="en", source="product_qa"))
                if limit is not None and len(examples) >= limit:
                    return examples
    return examples


_SPACES = re.compile(r"\s+")


def dedupe_key(text: str) -> str:
    """Case- and whitespace-insensitive key: two examples with the same key are the same message."""
    return _SPACES.sub(" ", text.strip().lower())


def merge_examples(*groups: Iterable[Example]) -> list[Example]:
    """All examples, one per message text; when texts collide the more trusted source wins (see SOURCES).

    An agent's correction therefore overrides a team example, which overrides the public data sets.
    """
    rank = {source: position for position, source in enumerate(SOURCES)}
    chosen: dict[str, Example] = {}
    order: list[str] = []
    for group in groups:
        for example in group:
            key = dedupe_key(example.text)
            current = chosen.get(key)
            if current is None:
                order.append(key)
                chosen[key] = example
            elif rank.get(example.source, len(SOURCES)) < rank.get(current.source, len(SOURCES)):
                chosen[key] = example
    return [chosen[key] for key in order]


def load_all_examples(
    *, extra: Sequence[Example] = (), include_public: bool = True, product_qa_limit: int | None = 1000
) -> list[Example]:
    """Corrections (`extra`), team examples and, unless left out, the public data sets."""
    groups: list[Iterable[Example]] = [extra, load_team_examples()]
    if include_public:
        groups.append(load_product_qa_examples(limit=product_qa_limit))
        groups.append(load_bitext_examples())
    return merge_examples(*groups)


def load_labelled_jsonl(path: Path, *, source: str = "eval") -> list[Example]:
    """A labelled message file such as ``evals/datasets/buyer_messages.jsonl`` (``text``, ``intent``, ``language``)."""
    examples: list[Example] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            examples.append(
                Example(text=row["text"], intent=row["intent"], language=row.get("language"), source=source)
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path.name} line {number} is not a labelled message ({exc}); fix the line.") from exc
    return examples

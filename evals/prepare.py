"""Derive the public eval sets from ``knowledge/public``: ``python -m evals.prepare``.

- ``bitext_heldout.jsonl``: the held-out fifth of the Bitext sample (see `engine.nlp.splits`), mapped onto the
  taxonomy; ``bitext_intent`` keeps Bitext's finer label, which the retrieval suite uses as relevance.
- ``product_qa.jsonl``: distinct hetPQA questions of the dev file with their human-written answers. Intent
  training reads at most the first 1,000 questions of the train file, so these are unseen.

Both sources are CDLA-Sharing-1.0; the files written here are derived data and keep the attribution in
``evals/datasets/README.md``. Output is sorted by id and byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.nlp.splits import example_id, is_heldout
from engine.nlp.training_data import BITEXT_FILE, PUBLIC_DATA_DIR, load_bitext_mapping

DATASETS_DIR = Path(__file__).resolve().parent / "datasets"
BITEXT_HELDOUT = "bitext_heldout.jsonl"
PRODUCT_QA = "product_qa.jsonl"
PRODUCT_QA_DEV = "hetPQA_answer_generation_dev.tsv"
ATTRIBUTION = (
    "Derived from the Bitext Sample Customer Support Training Dataset (Bitext Innovations) and from "
    "amazon-science/contextual-product-qa (hetPQA); both CDLA-Sharing-1.0."
)


@dataclass(frozen=True)
class BitextRow:
    id: str
    text: str
    bitext_intent: str
    intent: str  # taxonomy intent
    response: str
    heldout: bool


def load_bitext_rows(data_dir: Path = PUBLIC_DATA_DIR) -> list[BitextRow]:
    """Every mapped Bitext row with its split flag; file order."""
    mapping = load_bitext_mapping(data_dir)
    rows: list[BitextRow] = []
    with (data_dir / "bitext" / BITEXT_FILE).open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = row["instruction"].strip()
            intent = mapping.get(row["intent"])
            if text and intent:
                rows.append(
                    BitextRow(
                        id=example_id("bitext", text),
                        text=text,
                        bitext_intent=row["intent"],
                        intent=intent,
                        response=row["response"].strip(),
                        heldout=is_heldout(text),
                    )
                )
    return rows


def bitext_heldout_records(rows: Iterable[BitextRow]) -> list[dict[str, Any]]:
    unique = {r.id: r for r in rows if r.heldout}
    return [
        {"id": r.id, "text": r.text, "language": "en", "intent": r.intent, "bitext_intent": r.bitext_intent}
        for r in sorted(unique.values(), key=lambda r: r.id)
    ]


def product_qa_records(data_dir: Path = PUBLIC_DATA_DIR) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    with (data_dir / "product_qa" / PRODUCT_QA_DEV).open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            question = (row.get("question") or "").strip()
            answer = (row.get("answer") or "").strip().strip('"')
            if not question or not answer:
                continue
            record_id = example_id("pqa", question)
            seen.setdefault(
                record_id,
                {
                    "id": record_id,
                    "text": question,
                    "language": "en",
                    "intent": "product_question",
                    "reference": answer,
                    "asin": row.get("ASIN") or None,
                },
            )
    return [seen[key] for key in sorted(seen)]


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number} is not valid JSON ({exc.msg}); fix or remove the line.") from None
        if not isinstance(record, dict) or "text" not in record:
            raise InputError(f"{path}:{number} must be a JSON object with at least 'text'; fix the line.")
        record.setdefault("id", f"{path.stem}-{number}")
        yield record


def prepare(out_dir: Path = DATASETS_DIR, data_dir: Path = PUBLIC_DATA_DIR) -> dict[str, int]:
    """Write both derived sets into `out_dir`; returns the row count per file."""
    return {
        BITEXT_HELDOUT: write_jsonl(out_dir / BITEXT_HELDOUT, bitext_heldout_records(load_bitext_rows(data_dir))),
        PRODUCT_QA: write_jsonl(out_dir / PRODUCT_QA, product_qa_records(data_dir)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.prepare", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATASETS_DIR, help="folder for the derived files")
    args = parser.parse_args(argv)
    for name, count in prepare(args.out).items():
        print(f"{args.out / name}: {count} rows")
    print(ATTRIBUTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

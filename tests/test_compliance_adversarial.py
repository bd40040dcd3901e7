"""Generated hostile corpora for the gate: every blocked reply of the team set disguised every applicable
way (all blocked), hundreds of legitimate replies full of numbers and Amazon links (none blocked), and
hostile inputs on which doubling the length at most roughly doubles the time."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from engine.compliance import check_reply
from evals import compliance_legit, compliance_mutations

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"


def _check(row: dict) -> bool:
    buyer_language = row.get("buyer_language")
    verdict = check_reply(
        row["text"],
        buyer_language=buyer_language,
        reply_language=row.get("language") if buyer_language else None,
        allow_list=list(row.get("allow_list") or []),
        message_type=row.get("message_type"),
    )
    return not verdict.allowed


def test_every_disguised_blocked_reply_is_still_blocked() -> None:
    rows = list(compliance_mutations.mutated_rows(compliance_mutations.read_rows()))
    assert len(rows) >= 2000
    kinds = Counter(row["mutation"].split("-")[0] for row in rows)
    for kind in ("zwsp", "zwnj", "zwj", "wj", "bom", "shy", "homoglyphs", "fullwidth", "spaced", "dotted", "dot",
                 "prefix", "defanged", "digits", "line", "right"):  # fmt: skip
        assert kinds[kind] > 0, kind
    passed = [row["id"] for row in rows if not _check(row)]
    assert passed == []


def test_dot_words_of_all_13_languages_are_mutations() -> None:
    names = set(compliance_mutations.mutations("link"))
    languages = {"en", "de", "fr", "it", "es", "ja", "zh", "pt", "nl", "pl", "sv", "tr", "ar"}
    assert {f"dot-word-{language}" for language in languages} <= names


def test_legitimate_replies_are_never_blocked() -> None:
    rows = compliance_legit.rows()
    assert len(rows) >= 500
    assert {row["language"] for row in rows} == {"en", "de", "fr", "it", "es", "ja", "zh"}
    blocked = [(row["id"], row["text"]) for row in rows if _check(row)]
    assert blocked == []


@pytest.mark.parametrize(
    ("module", "name"),
    [(compliance_mutations, "compliance_mutated.jsonl"), (compliance_legit, "compliance_legit.jsonl")],
)
def test_the_eval_data_sets_are_what_the_generators_write(module: object, name: str, tmp_path: Path) -> None:
    written = tmp_path / name
    module.write(written)  # type: ignore[attr-defined]
    assert written.read_text(encoding="utf-8") == (DATASETS / name).read_text(encoding="utf-8"), (
        f"evals/datasets/{name} is stale: run python -m {module.__name__}"  # type: ignore[attr-defined]
    )


# Inputs that made the old rules quadratic, and others that would make a backtracking one so.
HOSTILE = {
    "spaces": "a" + " " * 8000 + "b",
    "cjk": "中" * 8000,
    "underscores": "a" + "_" * 8000 + "b",
    "grouped digits": "1 " * 4000,
    "dots": "a" + "." * 8000 + "b",
    "zero-width": "a\u200b" * 4000,
    "at signs": "a@" * 4000,
    "dashes": "1-" * 4000,
    "labels": "ab." * 2700,
    "brackets": "<a " * 2700,
    "spread letters": "W e " * 2000,
    "digit words": "one " * 2000,
    "review words": "review please " * 600,
}


def _best_time(text: str, runs: int = 5) -> float:
    """The least CPU time of a few runs: on a busy machine wall time measures the neighbours."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        check_reply(text)
        best = min(best, time.process_time() - started)
    return best


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_doubling_a_hostile_input_at_most_roughly_doubles_the_time(name: str) -> None:
    text = HOSTILE[name]
    check_reply(text)  # warm up
    single, double = _best_time(text), _best_time(text + text)
    assert double <= 3.0 * max(single, 0.001), f"{name}: {single * 1000:.1f} ms, doubled {double * 1000:.1f} ms"

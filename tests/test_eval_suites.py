"""Eval suites on the fake NLP backend: every suite runs, its metrics are sane and the report is safe HTML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from engine.db import Database
from engine.db.models import Conversation, Draft, Message, Store
from engine.settings import Settings
from evals.golden import golden_cases
from evals.prepare import DATASETS_DIR, bitext_heldout_records, load_bitext_rows, product_qa_records
from evals.report import build_run, render_html, write_run
from evals.suites import EvalContext, Progress, run_suites, sample


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def dataset_or_tiny(name: str, tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    """The team's data set, or a tiny stand-in while it is still being written."""
    path = DATASETS_DIR / f"{name}.jsonl"
    return path if path.is_file() else write_jsonl(tmp_path / f"{name}.jsonl", rows)


@pytest.fixture
def context(settings: Settings, fake_components: Any) -> EvalContext:
    return EvalContext(settings=settings, fast=True, progress=False, components_factory=lambda _: fake_components)


def test_intent_suite_reports_every_breakdown(context: EvalContext, tmp_path: Path) -> None:
    context.data = dataset_or_tiny(
        "buyer_messages",
        tmp_path,
        [
            {
                "id": "1",
                "text": "Where is my order?",
                "language": "en",
                "intent": "order_status",
                "marketplace": "US",
            },
            {
                "id": "2",
                "text": "ok danke",
                "language": "de",
                "intent": "no_response_needed",
                "marketplace": "DE",
            },
            {
                "id": "3",
                "text": "Bitte stornieren",
                "language": "de",
                "intent": "cancel_order",
                "marketplace": "DE",
            },
        ],
    )
    [result] = run_suites("intent", context)
    name = context.data.stem
    metrics = result.metrics
    assert 0.0 <= metrics[f"intent.{name}.accuracy"] <= 1.0
    assert 0.0 <= metrics[f"intent.{name}.ece"] <= 1.0
    details = result.details[name]
    labels = details["confusion"]["labels"]
    assert len(details["confusion"]["matrix"]) == len(labels)
    assert sum(map(sum, details["confusion"]["matrix"])) == metrics[f"intent.{name}.count"]
    assert len(details["reliability"]) == 10
    assert set(details["by_length"]) <= {"1-2", "3-9", "10+"}
    assert len(result.datasets[name]["sha256"]) == 64


def test_language_suite_on_a_tiny_set(context: EvalContext, tmp_path: Path) -> None:
    context.data = write_jsonl(
        tmp_path / "language.jsonl",
        [
            {"id": "de", "text": "Wo ist meine Bestellung? Ich warte seit zwei Wochen.", "language": "de"},
            {"id": "fr", "text": "Bonjour, je n'ai toujours pas reçu mon colis.", "language": "fr"},
            {"id": "ja", "text": "注文した商品がまだ届いていません。", "language": "ja", "marketplace": "JP"},
        ],
    )
    [result] = run_suites("language", context)
    assert result.metrics["language.language.accuracy"] == 1.0
    assert result.details["language"]["by_marketplace"]["JP"]["count"] == 1


def test_compliance_suite_scores_blocking_and_rules(context: EvalContext, tmp_path: Path) -> None:
    context.data = write_jsonl(
        tmp_path / "compliance.jsonl",
        [
            {"id": "1", "text": "See www.example-shop.com for a discount", "language": "en", "blocked": True,
             "rules": ["link"]},
            {"id": "2", "text": "Write to me at shop@example.com", "language": "en", "blocked": True,
             "rules": ["email"]},
            {"id": "3", "text": "Your order is on its way and should arrive on Friday.", "language": "en",
             "blocked": False, "rules": []},
        ],
    )  # fmt: skip
    [result] = run_suites("compliance", context)
    assert result.metrics["compliance.compliance.block_recall"] == 1.0
    assert result.metrics["compliance.compliance.false_block_rate"] == 0.0
    assert result.details["compliance"]["per_rule"]["link"]["recall"] == 1.0


def test_drafts_suite_checks_facts_language_and_action(context: EvalContext, tmp_path: Path) -> None:
    context.data = write_jsonl(
        tmp_path / "drafts.jsonl",
        [
            {"id": "1", "text": "Where is my order? Still nothing.", "language": "en",
             "intent": "order_status",
             "marketplace": "US", "order_id": "111-2233445-5566778", "facts": ["111-2233445-5566778"],
             "reference": "We are checking the status of order 111-2233445-5566778."},
            {"id": "2", "text": "ok thanks", "language": "en", "intent": "no_response_needed",
             "marketplace": "US",
             "facts": [], "reference": ""},
        ],
    )  # fmt: skip
    [result] = run_suites("drafts", context)
    metrics = result.metrics
    assert metrics["drafts.drafts.count"] == 2
    for key in ("pass_rate", "action_accuracy", "fact_coverage", "language_match", "allowed_rate"):
        assert 0.0 <= metrics[f"drafts.drafts.{key}"] <= 1.0
    assert metrics["drafts.drafts.fact_coverage"] == 1.0  # the order id is in the template's thanks line


def test_team_draft_cases_are_well_formed() -> None:
    from engine.taxonomy import INTENTS, LANGUAGES, MARKETPLACES

    rows = [json.loads(line) for line in (DATASETS_DIR / "drafts.jsonl").read_text("utf-8").splitlines()]
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert row["intent"] in INTENTS and row["language"] in LANGUAGES and row["marketplace"] in MARKETPLACES
        assert all(fact in row["reference"] for fact in row["facts"]), row["id"]
        if row.get("order_id"):
            assert row["order_id"] in row["facts"]
    per_intent = {i: sum(1 for r in rows if r["intent"] == i) for i in INTENTS}
    assert min(per_intent.values()) >= 5


def test_retrieval_suite_on_both_sets(context: EvalContext) -> None:
    [result] = run_suites("retrieval", context)
    for name in ("bitext_heldout", "product_qa"):
        assert result.metrics[f"retrieval.{name}.count"] == 80  # the fast sample
        hit1, hit5 = (
            result.metrics[f"retrieval.{name}.hit_at_1"],
            result.metrics[f"retrieval.{name}.hit_at_5"],
        )
        assert 0.0 < hit1 <= hit5 <= 1.0
        assert 0.0 < result.metrics[f"retrieval.{name}.mrr"] <= 1.0


def test_latency_suite_times_every_stage(context: EvalContext, tmp_path: Path) -> None:
    context.data = write_jsonl(
        tmp_path / "buyer_messages.jsonl",
        [{"id": str(i), "text": f"Where is order {i}?", "language": "en"} for i in range(5)],
    )
    [result] = run_suites("latency", context)
    for stage in ("language", "intent", "retrieval", "draft", "compliance"):
        assert result.metrics[f"latency.buyer_messages.{stage}_median_ms"] >= 0.0
    assert result.metrics["latency.buyer_messages.classify_batch_per_s"] > 0


def _add_decided_drafts(session: Session) -> None:
    store = Store(name="Eval Store")
    session.add(store)
    session.flush()
    conversation = Conversation(
        store_id=store.id, thread_key="t1", buyer_address="x@marketplace.amazon.de",
        buyer_name="Anna Schmidt",
        order_id="302-1234567-7654321", marketplace="DE",
    )  # fmt: skip
    session.add(conversation)
    session.flush()
    message = Message(
        store_id=store.id, conversation_id=conversation.id, kind="buyer_message", dedupe_key="m1",
        body="Hallo, ich bin Anna Schmidt. Wo ist 302-1234567-7654321? Tel. +49 170 1234567", language="de",
        intent="order_status",
    )  # fmt: skip
    session.add(message)
    session.flush()
    for status, text, final_or_same in (
        ("approved", "Hallo Anna Schmidt, Bestellung 302-1234567-7654321 ist unterwegs.", ""),
        ("edited", "Hallo, wir prüfen das.", "Hallo, wir prüfen das sofort."),
        ("rejected", "Falsch", None),
    ):
        session.add(
            Draft(
                conversation_id=conversation.id, message_id=message.id, status=status, text=text,
                final_text=final_or_same or (None if status == "rejected" else text),
                drafter="default", language="de", intent="order_status",
            )
        )  # fmt: skip


def test_online_suite_and_golden_export(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'online.db'}")
    db.migrate()
    with db.transaction() as session:
        _add_decided_drafts(session)
    settings = Settings(data_dir=tmp_path, database_url=db.engine.url.render_as_string(), nlp_backend="fake")
    [result] = run_suites("online", EvalContext(settings=settings, progress=False))
    assert result.skipped is None
    assert result.metrics["online.database.decided"] == 3
    assert result.metrics["online.database.acceptance_rate"] == pytest.approx(1 / 3)
    assert result.details["database"]["by_intent"]["order_status"]["reject_rate"] == pytest.approx(1 / 3)

    with db.transaction() as session:
        cases = golden_cases(session)
    db.dispose()
    assert len(cases) == 2
    exported = json.dumps(cases, ensure_ascii=False)
    for secret in ("Anna", "Schmidt", "302-1234567-7654321", "170 1234567"):
        assert secret not in exported
    approved = next(c for c in cases if c["source"] == "golden:approved")
    assert approved["facts"] == [approved["order_id"]] and approved["order_id"] in approved["reference"]


def test_online_suite_is_skipped_without_a_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, nlp_backend="fake")
    [result] = run_suites("online", EvalContext(settings=settings, progress=False))
    assert result.skipped and "no database" in result.skipped


def test_sample_is_deterministic_and_stratified() -> None:
    rows = [{"id": f"r{i}", "intent": "a" if i < 90 else "b"} for i in range(100)]
    first, again = sample(rows, 20, 13, "intent"), sample(rows, 20, 13, "intent")
    assert first == again
    assert sum(1 for r in first if r["intent"] == "b") == 10  # round-robin: the small class is not drowned
    assert sample(rows, 20, 14, "intent") != first


def test_report_escapes_data_and_draws_plots(tmp_path: Path) -> None:
    evil = "<script>alert('x')</script>"
    suite = {
        "suite": "intent",
        "metrics": {"intent.x.accuracy": 0.5},
        "datasets": {"x": {"path": "x.jsonl", "sha256": "ab" * 32, "rows": 2, "used": 2}},
        "details": {
            "x": {
                "confusion": {"labels": ["a", evil], "matrix": [[1, 0], [1, 0]]},
                "reliability": [{"lower": 0.9, "upper": 1.0, "count": 2, "confidence": 0.95, "accuracy": 0.5}],
                "by_language": {"en": {"count": 2, "accuracy": 0.5}},
                "worst": [{"id": "1", "text": evil, "gold": "a", "predicted": evil, "score": 0.9}],
            }
        },
    }
    run = build_run("intent", [suite], backend="fake", fast=True, seed=13)
    page = render_html(run)
    assert evil not in page and "&lt;script&gt;" in page
    assert page.count("<svg") == 3  # heat map, calibration curve, language bars
    out = write_run(run, tmp_path / "run")
    assert json.loads((out / "run.json").read_text("utf-8"))["metrics"] == {"intent.x.accuracy": 0.5}
    assert "src=" not in page and "href=" not in page  # self-contained: nothing to fetch


def test_progress_line_on_a_plain_stream(tmp_path: Path) -> None:
    log = (tmp_path / "progress.log").open("w+", encoding="utf-8")
    bar = Progress("intent", 3, stream=log)
    bar.advance(3)
    bar.close()
    log.seek(0)
    assert log.read() == "intent: 3 …\n"


def test_prepared_files_are_reproducible() -> None:
    rows = load_bitext_rows()
    committed = (DATASETS_DIR / "bitext_heldout.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line) for line in committed] == bitext_heldout_records(rows)
    assert not {r.text for r in rows if not r.heldout} & {json.loads(line)["text"] for line in committed}
    product = (DATASETS_DIR / "product_qa.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line) for line in product] == product_qa_records()

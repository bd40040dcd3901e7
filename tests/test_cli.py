"""The CLI contract: JSON Lines in, one object out per line in order; bad input names its line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "knowledge" / "demo"


def run_cli(args: list[str], tmp_path: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "REPLYDESK_DATA_DIR": str(tmp_path / "data"),
        "REPLYDESK_NLP": "fake",
        "HF_HUB_OFFLINE": "1",
        **env,
    }
    environment.pop("REPLYDESK_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], input=stdin, capture_output=True, text=True,
        env=environment, cwd=tmp_path, timeout=300,
    )  # fmt: skip


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


def test_classify_answers_every_line_in_order(cli_home: Path) -> None:
    records = [
        {"id": "a", "text": "Wo ist mein Paket? Seit einer Woche nichts.", "marketplace": "DE"},
        {"id": 2, "text": "I want to cancel my order please"},
        {"id": "c", "text": "商品はいつ届きますか？", "marketplace": "JP"},
    ]
    result = run_cli(["classify"], cli_home, "\n".join(json.dumps(r) for r in records) + "\n")
    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    assert [o["id"] for o in out] == ["a", 2, "c"]
    assert [o["language"] for o in out] == ["de", "en", "ja"]
    for o in out:
        assert set(o) == {"id", "language", "language_score", "intent", "intent_score"}
        assert 0.0 <= float(o["intent_score"]) <= 1.0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stdin", "line"),
    [('{"id": 1, "text": "ok"}\nnot json\n', 2), ('{"id": 1, "text": "ok"}\n\n{"text": "no id"}\n', 3), ("[1]\n", 1)],
)
def test_malformed_input_exits_non_zero_naming_the_line(cli_home: Path, stdin: str, line: int) -> None:
    result = run_cli(["check"], cli_home, stdin)
    assert result.returncode != 0
    assert f"line {line}" in result.stderr


def test_check_reports_violations_with_spans(cli_home: Path) -> None:
    text = "Thanks! Write to help@shop.example or call +44 20 7946 0958."
    stdin = (
        json.dumps({"id": "x", "text": text})
        + "\n"
        + json.dumps({"id": "y", "text": "Your order 302-1234567-1234567 ships today."})
    )
    result = run_cli(["check"], cli_home, stdin + "\n")
    assert result.returncode == 0, result.stderr
    blocked, fine = lines(result.stdout)
    assert blocked["allowed"] is False and fine["allowed"] is True
    rules = {v["rule"] for v in blocked["violations"]}  # type: ignore[attr-defined]
    assert {"email", "phone"} <= rules
    for v in blocked["violations"]:  # type: ignore[attr-defined]
        assert text[v["start"] : v["end"]] == v["text"]


def test_draft_gives_a_checked_draft_in_the_buyers_language(cli_home: Path) -> None:
    stdin = json.dumps(
        {"id": 7, "text": "Bonjour, où est ma commande ? Toujours rien reçu.", "marketplace": "FR",
         "order_id": "171-1234567-1234567", "buyer_name": "Claire"}
    )  # fmt: skip
    result = run_cli(["draft"], cli_home, stdin + "\n")
    assert result.returncode == 0, result.stderr
    (out,) = lines(result.stdout)
    assert out["id"] == 7 and out["language"] == "fr"
    assert {"draft", "sources", "allowed", "violations", "drafter", "intent"} <= set(out)
    assert out["drafter"] == "default"
    assert "{{" not in str(out["draft"])


def test_parse_email_reads_files_folders_and_mbox(cli_home: Path, tmp_path: Path) -> None:
    mbox = tmp_path / "two.mbox"
    parts = []
    for name in ("de-order_status-older-template.eml", "fr-change_order-older-template.eml"):
        parts.append(
            b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n" + (DEMO / name).read_bytes().replace(b"\r\n", b"\n")
        )
    mbox.write_bytes(b"\n".join(parts) + b"\n")
    result = run_cli(["parse-email", str(DEMO / "de-order_status-older-template.eml"), str(mbox)], cli_home)
    assert result.returncode == 0, result.stderr
    first, *rest = lines(result.stdout)
    assert first["kind"] == "buyer_message" and first["marketplace"] == "DE"
    assert first["order_id"] == "302-5561237-7781920"
    assert str(first["body"]).startswith("Hallo, wo bleibt meine Bestellung?")
    assert [r["source"] for r in rest] == [f"{mbox}#1", f"{mbox}#2"]
    keys = {"source", "kind", "marketplace", "buyer_address", "order_id", "asin", "product_title", "topic",
            "subject", "body", "message_id", "comm_token", "received_at"}  # fmt: skip
    assert keys <= set(first)


def test_import_then_process_end_to_end_on_sqlite(cli_home: Path) -> None:
    result = run_cli(["setup"], cli_home)
    assert result.returncode == 0, result.stderr
    assert run_cli(["store-add", "Demo", "--sender", "s@demo.example"], cli_home).returncode == 0
    first = run_cli(["import", str(DEMO), "--store", "Demo"], cli_home)
    assert first.returncode == 0, first.stderr
    again = run_cli(["import", str(DEMO), "--store", "Demo"], cli_home)
    assert "0 new" in again.stdout and "already stored" in again.stdout
    processed = run_cli(["process"], cli_home)
    assert processed.returncode == 0, processed.stderr
    assert "drafts written" in processed.stdout


def test_missing_path_is_a_clear_error(cli_home: Path) -> None:
    result = run_cli(["parse-email", "/nonexistent/mail.eml"], cli_home)
    assert result.returncode == 2
    assert "/nonexistent/mail.eml" in result.stderr

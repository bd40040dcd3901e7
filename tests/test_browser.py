"""End to end in a real browser: the app under `streamlit run`, Chromium driven by Playwright, a local SMTP server.

An agent signs in, opens a conversation, adds a phone number to the draft (sending is blocked and the rule is
shown), removes it, sends; the send worker delivers the mail and the SMTP server receives the edited text.
Screenshots go to `tests/artifacts/browser-*.png`.
"""

from __future__ import annotations

import email
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.db import Database
from engine.db.models import Conversation, Draft, DraftStatus, OutboxItem, OutboxState, Store
from engine.errors import MailboxError
from engine.send.worker import send_pending
from engine.services.accounts import set_smtp
from engine.settings import Settings
from engine.workflow.permissions import Principal, Role

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PHONE_LINE = "Rufen Sie uns einfach an: +49 30 12345678."
EDIT_LINE = "Wir melden uns morgen mit der Sendungsnummer."


@contextmanager
def signed_in_page(app_url: str, username: str, password: str) -> Iterator[Any]:
    """A Chromium page on the app, signed in with a local account; the browser closes afterwards."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(app_url)
            page.locator(".st-key-login_username input").fill(username)
            page.locator(".st-key-login_password input").fill(password)
            page.get_by_role("button", name="Sign in").click()
            yield page
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    """aiosmtpd handler: keeps every message it is handed."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    from aiosmtpd.controller import Controller

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def demo(demo_copy: Path) -> Iterator[tuple[Settings, Database]]:
    settings = Settings(data_dir=demo_copy, knowledge_dir=REPO_ROOT / "knowledge", nlp_backend="fake")
    db = Database(settings.resolved_database_url)
    yield settings, db
    db.dispose()


@pytest.fixture
def app_url(demo: tuple[Settings, Database], tmp_path: Path) -> Iterator[str]:
    settings, _ = demo
    port = free_port()
    env = {
        **os.environ,
        "REPLYDESK_DATA_DIR": str(settings.data_dir),
        "REPLYDESK_DATABASE_URL": settings.resolved_database_url,
        "REPLYDESK_NLP": "fake",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("OPENAI_API_KEY", None)
    log = (tmp_path / "streamlit.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "streamlit_app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"streamlit did not start: {(tmp_path / 'streamlit.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def no_sent_folder(_config: Any) -> Any:
    raise MailboxError("no IMAP server in this test")


def test_edit_block_fix_send_and_receive(
    demo: tuple[Settings, Database], app_url: str, smtp_server: tuple[Inbox, int]
) -> None:
    from playwright.sync_api import expect

    settings, db = demo
    inbox, smtp_port = smtp_server
    admin = Principal(agent_id=0, role=Role.ADMIN, store_ids=frozenset())
    with db.transaction() as session:
        store = session.scalars(select(Store).where(Store.name == "Demo Europe")).one()
        set_smtp(session, admin, store.id, host="127.0.0.1", port=smtp_port, security="none")
        conversation_id, draft_id, drafted, buyer = session.execute(
            select(Conversation.id, Draft.id, Draft.text, Conversation.buyer_address)
            .join(Draft, Draft.conversation_id == Conversation.id)
            .where(
                Conversation.store_id == store.id,
                Conversation.marketplace == "DE",
                Draft.status == DraftStatus.PENDING,
                Draft.allowed.is_(True),
                Draft.action == "reply",
            )
            .order_by(Conversation.amazon_deadline)
            .limit(1)
        ).one()
    final_text = f"{drafted.strip()}\n\n{EDIT_LINE}"

    with signed_in_page(app_url, "agent", "demo-agent") as page:
        expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
        expect(page.locator(f".st-key-open_{conversation_id} button")).to_be_visible()
        expect(page.get_by_test_id("stMetric").first).to_be_visible()
        page.wait_for_timeout(1000)  # let the queue fragment finish painting
        page.screenshot(path=str(ARTIFACTS / "browser-queue.png"), full_page=True)

        page.locator(f".st-key-open_{conversation_id} button").click()
        reply = page.locator(f".st-key-reply_{draft_id} textarea")
        expect(reply).to_be_visible()
        send = page.locator(".st-key-send button")
        expect(send).to_be_enabled()

        reply.fill(f"{drafted.strip()}\n\n{PHONE_LINE}")
        reply.press("Control+Enter")
        expect(page.get_by_text("Blocked by the compliance check")).to_be_visible()
        expect(page.get_by_text("Phone number", exact=False).first).to_be_visible()
        expect(send).to_be_disabled()
        page.mouse.move(700, 500)
        page.mouse.wheel(0, 650)  # the app scrolls inside its main block, not the page
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "browser-blocked.png"), full_page=True)

        reply.fill(final_text)
        reply.press("Control+Enter")
        expect(page.get_by_text("Blocked by the compliance check")).to_have_count(0)
        expect(send).to_be_enabled()
        expect(send).to_contain_text("Send edited reply")
        send.click()
        expect(page.get_by_text("Reply approved and queued for sending.")).to_be_visible()
        page.mouse.wheel(0, -5000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "browser-sent.png"), full_page=True)

    counts = send_pending(db, settings, sent_folder_checker=no_sent_folder)
    assert counts.sent == 1, counts
    assert len(inbox.received) == 1
    _sender, recipients, raw = inbox.received[0]
    assert recipients == [buyer]
    mail = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    body = mail.get_body(("plain",))
    assert body is not None
    sent_text = body.get_content().replace("\r\n", "\n").strip()
    assert sent_text == final_text
    assert "+49 30" not in sent_text
    with db.transaction() as session:
        item = session.scalars(select(OutboxItem).where(OutboxItem.draft_id == draft_id)).one()
        assert item.state == OutboxState.SENT and item.body == final_text
        assert session.get_one(Draft, draft_id).status == DraftStatus.SENT


def test_chromium_is_installed() -> None:
    assert shutil.which("chromium") == CHROMIUM, "install it with `apt-get install -y chromium` (make system-deps)"

"""In a real browser: ten wrong passwords lock an account, the right one is then refused with a clear message,
an admin unlocks it on the Settings page, and the right password gets in again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.db import Database
from engine.settings import Settings
from tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, demo, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["demo"]  # the fixture, imported for this module's tests

LOCKED = "This account is locked after too many wrong passwords. Ask an admin to unlock it."
WRONG = "Wrong username or password. Try again or ask an admin to reset it."


@pytest.fixture
def app_without_backoff(demo: tuple[Settings, Database], tmp_path: Path) -> Iterator[str]:
    """The app with the back-off turned off, so ten attempts run at once (the lock-out stays on)."""
    settings, _ = demo
    port = free_port()
    env = {
        **os.environ,
        "REPLYDESK_DATA_DIR": str(settings.data_dir),
        "REPLYDESK_DATABASE_URL": settings.resolved_database_url,
        "REPLYDESK_NLP": "fake",
        "REPLYDESK_LOGIN_BACKOFF_SECONDS": "0",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("OPENAI_API_KEY", None)
    log_path = tmp_path / "streamlit.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
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
                    raise AssertionError(f"streamlit did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.3)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_ten_wrong_passwords_lock_and_an_admin_unlocks(app_without_backoff: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(30_000)

            def attempt(username: str, password: str) -> None:
                page.locator(".st-key-login_username input").fill(username)
                page.locator(".st-key-login_password input").fill(password)
                page.get_by_role("button", name="Sign in").click()

            page.goto(app_without_backoff)
            for number in range(1, 10):
                attempt("agent", f"wrong-{number}")
                expect(page.get_by_text(WRONG)).to_be_visible()
                page.wait_for_timeout(200)
            attempt("agent", "wrong-10")
            expect(page.get_by_text(LOCKED)).to_be_visible()
            attempt("agent", "demo-agent")  # the right password, the 11th attempt
            page.wait_for_timeout(1000)
            expect(page.get_by_text(LOCKED)).to_be_visible()
            expect(page.get_by_role("heading", name="Review queue")).to_have_count(0)
            page.screenshot(path=str(ARTIFACTS / "security-locked.png"), full_page=True)

            admin = browser.new_page(viewport={"width": 1440, "height": 1000})
            admin.set_default_timeout(30_000)
            admin.goto(app_without_backoff)
            admin.locator(".st-key-login_username input").fill("admin")
            admin.locator(".st-key-login_password input").fill("demo-admin")
            admin.get_by_role("button", name="Sign in").click()
            expect(admin.get_by_role("heading", name="Review queue")).to_be_visible()
            admin.get_by_role("link", name="Settings").click()  # a new URL would be a new, signed-out session
            admin.get_by_role("tab", name="Agents").click()
            admin.locator(".st-key-edit_agent").click()
            admin.get_by_role("option", name="Mia Agent (agent)").click()
            admin.get_by_role("button", name="Unlock").click()
            expect(admin.get_by_text("Account unlocked: it can sign in again.")).to_be_visible()

            attempt("agent", "demo-agent")
            expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
        finally:
            browser.close()

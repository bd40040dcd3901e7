"""The drill-down in a real browser: a lead clicks a bar of the intent chart, sees that bar's conversations
and opens one. Same app server as `test_browser.py`, with the small shop of `test_statistics_page.py`
instead of the full demo. Screenshot: `tests/artifacts/browser-statistics-drill-down.png`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.db import Database
from engine.settings import Settings
from tests.test_browser import ARTIFACTS, REPO_ROOT, app_url, signed_in_page
from tests.test_statistics_page import PASSWORD, Shop

__all__ = ["app_url"]  # the server fixture, used here with the `demo` below

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def shop_settings(tmp_path: Path) -> Iterator[tuple[Settings, Database, Shop]]:
    settings = Settings(data_dir=tmp_path / "data", knowledge_dir=REPO_ROOT / "knowledge", nlp_backend="fake")
    settings.data_dir.mkdir(parents=True)
    db = Database(settings.resolved_database_url)
    db.migrate()
    shop = Shop(db)
    yield settings, db, shop
    db.dispose()


@pytest.fixture
def demo(shop_settings: tuple[Settings, Database, Shop]) -> tuple[Settings, Database]:
    """What `app_url` serves: the shop, not the full demo."""
    settings, db, _ = shop_settings
    return settings, db


def test_click_a_bar_and_open_one_of_its_conversations(
    shop_settings: tuple[Settings, Database, Shop], app_url: str
) -> None:
    from playwright.sync_api import expect

    ids = shop_settings[2].ids
    with signed_in_page(app_url, "lead", PASSWORD) as page:
        page.get_by_role("link", name="Statistics").click()
        expect(page.get_by_role("heading", name="Statistics")).to_be_visible()

        chart = page.locator(".st-key-chart_intent_0")
        chart.scroll_into_view_if_needed()  # Streamlit draws a chart once it is on screen
        bar = chart.locator('path[aria-roledescription="bar"][aria-label*="Where is my order"]')
        expect(bar).to_have_count(1, timeout=30_000)
        bar.click()

        expect(page.get_by_text("2 conversations")).to_be_visible()
        expect(page.locator(f".st-key-drill_open_{ids['parcel one']} button")).to_be_visible()
        expect(page.locator(f".st-key-drill_open_{ids['parcel two']} button")).to_be_visible()
        expect(page.locator(f".st-key-drill_open_{ids['southern parcel']}")).to_have_count(0)
        expect(page.get_by_role("combobox", name="Category")).to_have_value("Where is my order")
        # The picked bar stays bright, the others are dimmed.
        opacity = "el => getComputedStyle(el).opacity"
        expect(bar).to_be_visible()
        assert bar.evaluate(opacity) == "1"
        other = chart.locator('path[aria-roledescription="bar"][aria-label*="Damaged"]')
        assert float(other.evaluate(opacity)) < 1
        page.locator(".st-key-drill_dimension").scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "browser-statistics-drill-down.png"))

        page.locator(f".st-key-drill_open_{ids['parcel two']} button").click()
        # The conversation page builds the NLP components on first use: give it more than expect's 5 s.
        expect(page.get_by_role("heading", name="parcel two")).to_be_visible(timeout=60_000)
        expect(page.get_by_role("heading", name="Statistics")).to_have_count(0)

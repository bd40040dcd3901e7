"""A newcomer's first minute, in a real browser: on the demo as `replydesk setup --demo` leaves it, Statistics
shows a team's answered figures (not 0 %), and the review queue shows fresh, at-risk and overdue conversations
side by side. Same app server and demo as `test_browser.py`. Screenshots: `tests/artifacts/browser-demo-*.png`.
"""

from __future__ import annotations

import re

import pytest

from tests.test_browser import ARTIFACTS, app_url, demo, signed_in_page

__all__ = ["app_url", "demo"]  # the server and its demo database, used here as fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _metric(page: object, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(has_text=label).first  # type: ignore[attr-defined]
    return str(metric.get_by_test_id("stMetricValue").inner_text()).strip()


def test_statistics_show_answered_figures_and_the_queue_three_sla_states(app_url: str) -> None:
    from playwright.sync_api import expect

    with signed_in_page(app_url, "lead", "demo-lead") as page:
        expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
        overdue = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text=re.compile(r"^overdue by "))
        expect(overdue.first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1000)  # let the queue fragment finish painting
        colours = page.evaluate(
            """() => [...document.querySelectorAll('[data-testid="stMarkdownContainer"]')]
                .filter(el => /^(overdue by )?(\\d+ d \\d+ h|(\\d+ h )?\\d+ min)$/.test(el.innerText.trim()))
                .map(el => getComputedStyle(el.querySelector('strong') || el.querySelector('p') || el).color)"""
        )
        page.screenshot(path=str(ARTIFACTS / "browser-demo-queue.png"), full_page=True)
        assert len(set(colours)) >= 3, colours  # overdue (red), at risk (orange) and comfortable (the text colour)

        page.get_by_role("link", name="Statistics").click()
        expect(page.get_by_role("heading", name="Statistics")).to_be_visible()
        expect(page.get_by_test_id("stMetric").filter(has_text="Answered within 24 h")).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "browser-demo-statistics.png"), full_page=True)
        answered = _metric(page, "Answered within 24 h")
        assert answered not in ("—", "0.0 %", "0 %"), answered
        assert float(re.sub(r"[^\d.]", "", answered)) > 50
        assert _metric(page, "First response, median") not in ("—", "")
        late = _metric(page, "Late-response rate, 30 days")
        assert late != "—" and float(re.sub(r"[^\d.]", "", late)) < 50, late

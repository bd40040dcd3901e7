"""The agent sees what the gate sees: the conversation page shows invisible characters as markers in the
checked text, highlights the violating span there and names the disguise (AppTest, demo database)."""

from __future__ import annotations

from engine.db import Database
from tests.test_app_pages import _compliant_draft, open_conversation, reply_area, send_button, signed_in


def test_the_preview_shows_a_zero_width_space_and_names_the_disguise(app_env: Database) -> None:
    conversation_id, _ = _compliant_draft(app_env)
    at = open_conversation(signed_in("agent", "demo-agent"), conversation_id)
    area = reply_area(at)
    area.input(area.value + "\nThe manual is on mystore\u200b.com as well.").run()
    assert not at.exception, at.exception
    assert send_button(at).disabled
    markdown = [m.value for m in at.markdown]
    assert any(":red-background[mystore⟨ZWSP⟩\\.com]" in m for m in markdown), markdown
    errors = [e.value.replace("\\", "") for e in at.error]  # the page escapes Markdown in explanations
    assert any("A zero-width space hides a link" in e for e in errors), errors
    assert any("(invisible)" in e and "⟨ZWSP⟩" in e for e in errors), errors

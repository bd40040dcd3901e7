"""The statistics page's drill-down, driven by AppTest: every chart is selectable, a click on a bar lists that
bar's conversations (only from the lead's stores), the select boxes do the same without a mouse, and a listed
conversation opens.

The data is small and hand-built (no demo setup), dated a few days back so it falls in the page's default
period: store North (the lead's) has two "where is my order" conversations and one damaged item whose draft
was rejected; store South, which the lead cannot see, has another "where is my order".

AppTest (streamlit 1.67) has no API for chart selections, so `click_bar` sends the widget state the browser
sends after a click: `{"selection": {"pick": [{"key": ...}]}}` for the chart's element id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from engine.db import Database
from engine.db.base import utcnow
from engine.db.models import Conversation, Draft, DraftStatus, Message, Store
from engine.services.agents import NewPassword, create_agent
from engine.ui import charts
from engine.workflow.permissions import Role

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "streamlit_app.py")
TIMEOUT = 60
PASSWORD = "lead-password"


class Shop:
    """The hand-built data; conversation ids by name."""

    def __init__(self, db: Database) -> None:
        now = utcnow()
        with db.transaction() as session:
            north = Store(name="North", marketplaces=["DE"], allow_list=[])
            south = Store(name="South", marketplaces=["US"], allow_list=[])
            session.add_all([north, south])
            session.flush()
            create_agent(session, "lead", password=NewPassword.of(PASSWORD), role=Role.LEAD, stores=[north])
            self.ids: dict[str, int] = {}
            for name, store, intent, days_ago in (
                ("parcel one", north, "order_status", 3),
                ("parcel two", north, "order_status", 2),
                ("broken lamp", north, "damaged_defective", 2),
                ("southern parcel", south, "order_status", 2),
            ):
                received = now - timedelta(days=days_ago)
                conversation = Conversation(
                    store_id=store.id,
                    thread_key=name,
                    marketplace=store.marketplaces[0],
                    language="en",
                    intent=intent,
                    buyer_address=f"{name.replace(' ', '.')}@marketplace.amazon.example",
                    subject=name,
                    last_message_at=received,
                )
                session.add(conversation)
                session.flush()
                message = Message(
                    store_id=store.id,
                    conversation_id=conversation.id,
                    direction="in",
                    kind="buyer_message",
                    dedupe_key=name,
                    body="Where is it?",
                    received_at=received,
                    intent=intent,
                    language="en",
                )
                session.add(message)
                session.flush()
                self.ids[name] = conversation.id
                if name == "broken lamp":
                    session.add(
                        Draft(
                            conversation_id=conversation.id,
                            message_id=message.id,
                            status=DraftStatus.REJECTED,
                            text="Sorry.",
                            intent=intent,
                            language="en",
                            drafter="default",
                            template_id="damaged.en",
                            sources=[],
                            reject_reason="Wrong tone",
                            decided_at=received + timedelta(hours=1),
                            created_at=received,
                            verdict={},
                            allowed=True,
                        )
                    )


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = f"sqlite:///{data_dir / 'replydesk.db'}"
    monkeypatch.setenv("REPLYDESK_DATA_DIR", str(data_dir))
    monkeypatch.setenv("REPLYDESK_DATABASE_URL", url)
    monkeypatch.setenv("REPLYDESK_NLP", "fake")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    db = Database(url)
    db.migrate()
    yield Shop(db)
    db.dispose()


def statistics_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.text_input(key="login_username").input("lead")
    at.text_input(key="login_password").input(PASSWORD)
    at.form_submit_button[0].click().run()
    at.switch_page("app_pages/statistics.py").run()
    assert not at.exception, at.exception
    return at


def chart(at: AppTest, dimension: str) -> Any:
    """The chart of `dimension` (its key carries a redraw counter)."""
    found = [c for c in at.get("vega_lite_chart") if c.key and c.key.startswith(f"chart_{dimension}_")]
    assert len(found) == 1, [c.key for c in at.get("vega_lite_chart")]
    return found[0]


def chart_rows(at: AppTest, dimension: str) -> list[dict[str, Any]]:
    """The rows the chart draws: Streamlit moves the spec's data into the element as Arrow."""
    return list(pa.ipc.open_stream(chart(at, dimension).proto.data.data).read_all().to_pylist())


def click_bar(at: AppTest, dimension: str, key: str | None) -> AppTest:
    """What the browser sends when a bar is clicked (or, with None, the empty space beside the bars)."""
    points: Any = [{charts.KEY: key}] if key is not None else {}
    states = at._tree.get_widget_states()
    states.widgets.append(
        WidgetState(id=chart(at, dimension).proto.id, string_value=json.dumps({"selection": {charts.PICK: points}}))
    )
    at._run(states)
    assert not at.exception, at.exception
    return at


def listed(at: AppTest) -> list[int]:
    return [int(b.key.removeprefix("drill_open_")) for b in at.button if b.key and b.key.startswith("drill_open_")]


def drill_choice(at: AppTest) -> tuple[Any, Any]:
    dimension = at.selectbox(key="drill_dimension").value
    return dimension, at.selectbox(key=f"drill_value_{dimension}").value


def test_every_chart_is_selectable_and_shows_only_the_leads_stores(shop: Shop) -> None:
    at = statistics_page()
    selectable = {str(c.key).rsplit("_", 1)[0] for c in at.get("vega_lite_chart") if list(c.proto.selection_mode)}
    assert selectable == {
        "chart_day",
        "chart_intent",
        "chart_language",
        "chart_marketplace",
        "chart_store",
        "chart_template",
        "chart_drafter",
        "chart_rejection_reason",
    }
    assert all(list(c.proto.selection_mode) == [charts.PICK] for c in at.get("vega_lite_chart"))
    assert {(r["key"], r["label"], r["count"]) for r in chart_rows(at, "intent")} == {
        ("order_status", "Where is my order", 2),
        ("damaged_defective", "Damaged, defective or wrong item", 1),
    }
    assert [(r["key"], r["count"]) for r in chart_rows(at, "store")] == [("North", 3)]
    assert [(r["key"], r["part"], r["count"]) for r in chart_rows(at, "template")] == [("damaged.en", "Rejected", 1)]
    assert listed(at) == []  # nothing picked yet


def test_clicking_a_bar_lists_its_conversations(shop: Shop) -> None:
    at = click_bar(statistics_page(), "intent", "order_status")
    assert drill_choice(at) == ("intent", "order_status")
    assert listed(at) == [shop.ids["parcel two"], shop.ids["parcel one"]]  # newest first; South's is not shown
    assert "2 conversations" in [c.value for c in at.caption]
    # The clicked chart keeps its selection; every other chart is redrawn without an old one.
    assert chart(at, "intent").key == "chart_intent_0"
    assert chart(at, "language").key == "chart_language_1"
    assert json.loads(chart(at, "intent").proto.spec)["params"][0]["value"] == [{"key": "order_status"}]

    click_bar(at, "rejection_reason", "wrong tone")  # a draft chart: the latest click wins
    assert drill_choice(at) == ("rejection_reason", "wrong tone")
    assert listed(at) == [shop.ids["broken lamp"]]
    assert chart(at, "intent").key == "chart_intent_1"


def test_clicking_beside_the_bars_clears_the_list(shop: Shop) -> None:
    at = click_bar(statistics_page(), "store", "North")
    assert len(listed(at)) == 3
    click_bar(at, "store", None)
    assert drill_choice(at) == ("store", None)
    assert listed(at) == []


def test_the_select_boxes_drill_down_without_a_mouse(shop: Shop) -> None:
    at = statistics_page()
    at.selectbox(key="drill_dimension").select("day").run()
    assert at.selectbox(key="drill_value_day").options == sorted(
        (utcnow() - timedelta(days=d)).date().isoformat() for d in (3, 2)
    )
    two_days_ago = (utcnow() - timedelta(days=2)).date().isoformat()
    at.selectbox(key="drill_value_day").select(two_days_ago).run()
    assert not at.exception, at.exception
    assert sorted(listed(at)) == sorted([shop.ids["parcel two"], shop.ids["broken lamp"]])
    # The chart is redrawn with the chosen bar selected, so it shows what the list is about.
    day_chart = chart(at, "day")
    assert day_chart.key == "chart_day_1"
    assert json.loads(day_chart.proto.spec)["params"][0]["value"] == [{"key": two_days_ago}]


def test_a_listed_conversation_opens(shop: Shop) -> None:
    at = click_bar(statistics_page(), "intent", "damaged_defective")
    at.button(key=f"drill_open_{shop.ids['broken lamp']}").click().run()
    assert at.session_state["conversation_id"] == shop.ids["broken lamp"]
    assert not any(c.key and c.key.startswith("chart_") for c in at.get("vega_lite_chart"))  # left the page

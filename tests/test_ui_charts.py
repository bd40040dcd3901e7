"""The pure parts of the clickable charts: the Vega-Lite spec, reading a selection event, the drill-down bars."""

from __future__ import annotations

import json
from typing import Any

import altair as alt
import pytest
from streamlit.elements.vega_charts import VegaLiteStateSerde

from engine.services.stats import UNKNOWN, Acceptance, DraftQuality, Volume
from engine.ui import charts
from engine.ui.charts import Bar


def spec_of(bars: list[Bar], **options: Any) -> dict[str, Any]:
    return charts.bar_spec(bars, category_title="Intent", count_title="Messages", **options)


BARS = [Bar("order_status", "Where is my order", 5), Bar("return_refund", "Return or refund", 2)]
STACKED = [Bar("t1", "t1", 3, "Sent unchanged"), Bar("t1", "t1", 1, "Rejected"), Bar("t2", "t2", 2, "Edited")]


@pytest.mark.parametrize(
    "spec",
    [
        spec_of(BARS),
        spec_of(BARS, horizontal=False, picked="order_status"),
        spec_of(STACKED, part_title="Outcome", picked="t1"),
    ],
)
def test_specs_are_valid_vega_lite(spec: dict[str, Any]) -> None:
    alt.Chart.from_dict(spec)  # validates against the Vega-Lite schema; raises when a property is wrong


def test_clicking_selects_the_key_of_a_bar_not_its_label() -> None:
    spec = spec_of(BARS)
    assert spec["params"] == [{"name": "pick", "select": {"type": "point", "fields": ["key"], "toggle": False}}]
    assert spec["data"]["values"][0] == {"key": "order_status", "label": "Where is my order", "count": 5, "part": None}
    # An aggregate would drop the key field from the marks, and a click would select nothing.
    assert not any("aggregate" in channel for channel in spec["encoding"].values() if isinstance(channel, dict))
    assert spec["encoding"]["opacity"]["condition"] == {"param": "pick", "value": 1}


def test_categories_run_down_the_side_largest_first_and_days_along_the_bottom_in_order() -> None:
    across = spec_of(BARS)["encoding"]
    assert (across["y"]["field"], across["x"]["field"]) == ("label", "count")
    assert across["y"]["sort"] == {"field": "count", "op": "sum", "order": "descending"}
    down = spec_of(BARS, horizontal=False)["encoding"]
    assert (down["x"]["field"], down["x"]["type"], down["x"]["sort"]) == ("label", "ordinal", None)


def test_a_picked_key_starts_selected() -> None:
    assert "value" not in spec_of(BARS)["params"][0]
    assert spec_of(BARS, picked="return_refund")["params"][0]["value"] == [{"key": "return_refund"}]


def test_stacked_parts_are_coloured_in_the_order_given() -> None:
    spec = spec_of(STACKED, part_title="Outcome")
    assert spec["encoding"]["color"]["scale"]["domain"] == ["Sent unchanged", "Rejected", "Edited"]
    assert "color" not in spec_of(BARS)["encoding"]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (None, None),
        ({}, None),
        ({"selection": {}}, None),
        ({"selection": {"pick": {}}}, None),  # what Streamlit sends when the selection is cleared
        ({"selection": {"pick": []}}, None),
        ({"selection": {"pick": [{"key": "order_status"}]}}, "order_status"),
        ({"selection": {"pick": [{"key": "a"}, {"key": "b"}]}}, "a"),
        ({"selection": {"pick": [{"key": 2024}]}}, "2024"),
        ({"selection": {"pick": [{"label": "Where is my order"}]}}, None),
        ({"selection": {"pick": {"key": ["a", "b"]}}}, None),  # an interval selection
        ({"selection": {"pick": "order_status"}}, None),
        ({"selection": {"other": [{"key": "a"}]}}, None),
    ],
)
def test_picked_key(event: dict[str, Any] | None, expected: str | None) -> None:
    assert charts.picked_key(event) == expected


def test_picked_key_reads_streamlits_own_event_state() -> None:
    serde = VegaLiteStateSerde([charts.PICK])
    assert charts.picked_key(serde.deserialize(None)) is None
    clicked = serde.deserialize(json.dumps({"selection": {"pick": [{"key": "de"}]}}))
    assert charts.picked_key(clicked) == "de"


def test_keys_are_distinct_non_empty_and_in_chart_order() -> None:
    assert charts.keys([*STACKED, Bar("t3", "t3", 0), Bar("t0", "t0", 1)]) == ["t1", "t2", "t0"]


def test_drill_down_bars_cover_every_dimension() -> None:
    volume = Volume(
        total=4,
        by_day=[("2024-06-02", 3), ("2024-06-04", 1)],
        by_intent={"order_status": 3, UNKNOWN: 1},
        by_language={"de": 4},
        by_marketplace={"DE": 4},
        by_store={"North": 4},
    )
    template = Acceptance("order_status.de", unchanged=2, edited=0, rejected=1)
    quality = DraftQuality(
        overall=Acceptance("all", unchanged=2, rejected=1),
        by_intent=[],
        by_language=[],
        by_template=[template],
        by_drafter=[Acceptance("default", unchanged=2, rejected=1)],
        rejection_reasons=[("wrong tone", 1)],
    )
    bars = charts.drill_down_bars(
        volume,
        quality,
        ["2024-06-02", "2024-06-03", "2024-06-04"],
        intent_label=lambda intent: intent.replace("_", " ").title(),
        outcome_label=str.upper,
    )
    assert set(bars) == {"day", "intent", "language", "marketplace", "store", "template", "drafter", "rejection_reason"}
    assert bars["day"] == [
        Bar("2024-06-02", "2024-06-02", 3),
        Bar("2024-06-03", "2024-06-03", 0),
        Bar("2024-06-04", "2024-06-04", 1),
    ]
    assert bars["intent"] == [Bar("order_status", "Order Status", 3), Bar(UNKNOWN, UNKNOWN, 1)]
    assert bars["store"] == [Bar("North", "North", 4)]
    # A stacked bar per template, one part per outcome that happened.
    assert bars["template"] == [
        Bar("order_status.de", "order_status.de", 2, "UNCHANGED"),
        Bar("order_status.de", "order_status.de", 1, "REJECTED"),
    ]
    assert bars["rejection_reason"] == [Bar("wrong tone", "wrong tone", 1)]

"""Bar charts whose bars can be clicked, for the drill-down from a statistic to its conversations.

`bar_spec` builds a Vega-Lite spec with one point selection named `PICK` over the `key` field; `picked_key`
reads Streamlit's selection event back into the key of the clicked bar. `drill_down_bars` turns the
statistics into the bars of every drill-down dimension, so the charts and the select-box fallback show the
same values.

Streamlit (1.67) reports a point selection as `{"selection": {"pick": [{"key": "..."}, ...]}}` and an empty
one as `{"selection": {"pick": {}}}` (see `VegaLiteStateSerde` and the frontend's unwrapping of `vlPoint.or`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.services.stats import UNKNOWN, Acceptance, DraftQuality, Volume

PICK = "pick"  # the selection parameter in every chart; also the `selection_mode` given to Streamlit
KEY = "key"  # the raw value that `stats.conversations_for` filters on
LABEL = "label"  # what the axis and the tooltip show
COUNT = "count"
PART = "part"  # the stacked segment of a bar (a draft outcome), when there is one

OUTCOMES = ("unchanged", "edited", "rejected")
DIMMED = 0.35  # opacity of the bars that are not picked while one is


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    count: int
    part: str | None = None


def bar_spec(
    bars: Sequence[Bar],
    *,
    category_title: str,
    count_title: str,
    horizontal: bool = True,
    part_title: str | None = None,
    picked: str | None = None,
) -> dict[str, Any]:
    """A Vega-Lite bar chart of `bars`; clicking a bar selects its key. Bars sharing a key are stacked by
    `part`. Categories run down the side, largest first (`horizontal`), or along the bottom in the given
    order (days). `picked` starts the chart with that key selected, so a redrawn chart shows the pick."""
    rows = [{KEY: b.key, LABEL: b.label, COUNT: b.count, PART: b.part} for b in bars]
    # The category title names the bars for screen readers ("Intent: Return or refund"); the axis hides it.
    category: dict[str, Any] = {"field": LABEL, "type": "nominal" if horizontal else "ordinal", "title": category_title}
    category["sort"] = {"field": COUNT, "op": "sum", "order": "descending"} if horizontal else None
    category["axis"] = {"title": None, "labelLimit": 220} if horizontal else {"title": None, "labelAngle": -45}
    # No aggregate: every row stays a mark of its own, so a click carries the row's key.
    amount: dict[str, Any] = {
        "field": COUNT,
        "type": "quantitative",
        "title": count_title,
        "axis": {"format": "d", "tickMinStep": 1},
    }
    tooltip: list[dict[str, Any]] = [{"field": LABEL, "type": "nominal", "title": category_title}]
    encoding: dict[str, Any] = {
        "x": amount if horizontal else category,
        "y": category if horizontal else amount,
        "opacity": {"condition": {"param": PICK, "value": 1}, "value": DIMMED},
        "tooltip": tooltip,
    }
    if part_title is not None:
        parts = list(dict.fromkeys(b.part for b in bars if b.part is not None))
        encoding["color"] = {
            "field": PART,
            "type": "nominal",
            "title": part_title,
            "scale": {"domain": parts},
            "legend": {"orient": "bottom"},
        }
        tooltip.append({"field": PART, "type": "nominal", "title": part_title})
    tooltip.append({"field": COUNT, "type": "quantitative", "title": count_title})
    selection: dict[str, Any] = {"name": PICK, "select": {"type": "point", "fields": [KEY], "toggle": False}}
    if picked is not None:
        selection["value"] = [{KEY: picked}]
    spec: dict[str, Any] = {
        "data": {"values": rows},
        "mark": {"type": "bar", "cursor": "pointer"},
        "params": [selection],
        "encoding": encoding,
    }
    if horizontal:
        spec["height"] = {"step": 22}  # one readable row per category, however many there are
    return spec


def picked_key(event: Mapping[str, Any] | None) -> str | None:
    """The key of the bar selected in a chart's selection event, or None when nothing is selected."""
    selection = (event or {}).get("selection") or {}
    points = selection.get(PICK) or []
    if not isinstance(points, Sequence) or isinstance(points, str):
        return None  # an interval or cleared selection arrives as a mapping
    for point in points:
        if isinstance(point, Mapping) and point.get(KEY) is not None:
            return str(point[KEY])
    return None


def keys(bars: Iterable[Bar]) -> list[str]:
    """The distinct keys with a non-zero count, in chart order: the values one can drill into."""
    return list(dict.fromkeys(b.key for b in bars if b.count))


def _counted(counts: Iterable[tuple[str, int]], label: Callable[[str], str] = str) -> list[Bar]:
    return [Bar(key, label(key), count) for key, count in counts]


def _outcomes(rows: Iterable[Acceptance], outcome_label: Callable[[str], str]) -> list[Bar]:
    return [Bar(a.key, a.key, getattr(a, o), outcome_label(o)) for a in rows for o in OUTCOMES if getattr(a, o)]


def drill_down_bars(
    volume: Volume,
    quality: DraftQuality,
    days: Sequence[str],
    *,
    intent_label: Callable[[str], str],
    outcome_label: Callable[[str], str],
) -> dict[str, list[Bar]]:
    """The bars of every dimension `stats.conversations_for` can drill into, keyed by dimension. Days with
    no message get an empty bar so gaps show; unknown intents keep their key as label."""
    per_day = dict(volume.by_day)
    return {
        "day": [Bar(day, day, per_day.get(day, 0)) for day in days],
        "intent": _counted(volume.by_intent.items(), lambda k: k if k == UNKNOWN else intent_label(k)),
        "language": _counted(volume.by_language.items()),
        "marketplace": _counted(volume.by_marketplace.items()),
        "store": _counted(volume.by_store.items()),
        "template": _outcomes(quality.by_template, outcome_label),
        "drafter": _outcomes(quality.by_drafter, outcome_label),
        "rejection_reason": _counted(quality.rejection_reasons),
    }

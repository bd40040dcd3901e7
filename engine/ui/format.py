"""Pure formatting for the pages: safe markdown for untrusted text, compliance highlights, durations, CSV.

Buyer and agent text is never rendered as HTML. Where it must go through markdown (to highlight a span),
every ASCII punctuation character is backslash-escaped first, so `<script>`, `**`, `[link](...)`, `$x$` and
`:red[...]` all show literally; only the highlight directives this module adds are markup.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from engine.workflow.sla import SlaState, format_time_left

_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_SEVERITY_COLOUR = {"block": "red", "warn": "orange"}


def escape_markdown(text: str) -> str:
    """Text that Streamlit's markdown shows exactly as written (line breaks kept, no markup, no HTML)."""
    escaped = "".join(f"\\{c}" if c in _ASCII_PUNCTUATION else c for c in text.replace("\r\n", "\n"))
    # Leading spaces would make an indented code block; two trailing spaces make a hard line break.
    return "  \n".join(line.lstrip(" \t") for line in escaped.split("\n"))


def highlighted_markdown(text: str, spans: Iterable[tuple[int, int, str]]) -> str:
    """`text` as safe markdown with each (start, end, severity) span on a red (block) or orange (warn)
    background. Overlapping spans are merged into the first; spans outside the text are ignored."""
    cleaned: list[tuple[int, int, str]] = []
    for start, end, severity in sorted(spans):
        start, end = max(0, start), min(len(text), end)
        if start >= end:
            continue
        if cleaned and start < cleaned[-1][1]:
            last = cleaned[-1]
            severity = "block" if "block" in (severity, last[2]) else last[2]
            cleaned[-1] = (last[0], max(last[1], end), severity)
            continue
        cleaned.append((start, end, severity))
    pieces: list[str] = []
    position = 0
    for start, end, severity in cleaned:
        pieces.append(escape_markdown(text[position:start]))
        inner = escape_markdown(text[start:end].replace("\n", " ")).strip() or "\\_"
        pieces.append(f":{_SEVERITY_COLOUR.get(severity, 'red')}-background[{inner}]")
        position = end
    pieces.append(escape_markdown(text[position:]))
    return "".join(pieces)


def sla_markdown(state: str, left: timedelta | None, language: str) -> str:
    """The time left as markdown: red and bold when overdue, orange when at risk (under 4 h)."""
    if left is None:
        return "—"
    label = format_time_left(left, language)
    if state == SlaState.OVERDUE:
        return f":red[**{label}**]"
    if state == SlaState.AT_RISK:
        return f":orange[**{label}**]"
    return label


def duration(seconds: float | None, language: str = "en") -> str:
    """A response time such as "3 h 12 min" or "2 d 4 h"; "—" for no value."""
    if seconds is None:
        return "—"
    text = format_time_left(timedelta(seconds=max(0.0, seconds)), language)
    return text.removeprefix("剩余 ")


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV text of dict rows (columns from the first row); spreadsheet formulas are neutralised."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0].keys()), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    # A buyer's "=HYPERLINK(...)" must not become a formula when a lead opens the export.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value

"""Eval reports: ``run.json`` and a self-contained ``report.html`` (inline SVG, no scripts, no downloads).

Plots are drawn here as SVG: a confusion-matrix heat map, bars per language / marketplace / length bucket, a
reliability (calibration) curve. Every piece of data-set or model text is HTML-escaped before it is written.
"""

from __future__ import annotations

import html
import json
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUNS_DIR = Path(__file__).resolve().parent / "runs"
RUN_FORMAT = 1
RUN_FILE = "run.json"
REPORT_FILE = "report.html"
_CELL = 26
_BAR_HEIGHT = 18
_FONT = "font-family:system-ui,sans-serif;font-size:11px"


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def build_run(
    suite: str,
    results: Sequence[Mapping[str, Any]],
    *,
    backend: str,
    fast: bool,
    seed: int,
    environment: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The run document: flat metrics for the gate plus each suite's details for the report."""
    metrics: dict[str, float] = {}
    for result in results:
        metrics.update(result.get("metrics", {}))
    mode = "fast" if fast else "full"
    return {
        "format": RUN_FORMAT,
        "suite": suite,
        "created_at": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "backend": backend,
        "mode": mode,
        "profile": f"{backend}-{mode}",
        "seed": seed,
        "environment": {"python": platform.python_version(), **dict(environment or {})},
        "metrics": dict(sorted(metrics.items())),
        "suites": list(results),
    }


def run_directory(run: Mapping[str, Any], root: Path = RUNS_DIR) -> Path:
    stamp = str(run["created_at"]).replace("-", "").replace(":", "")
    return root / f"{stamp}-{run['suite']}-{run['profile']}"


def write_run(run: Mapping[str, Any], out: Path | None = None, root: Path = RUNS_DIR) -> Path:
    """Write ``run.json`` and ``report.html`` into `out` (default: a new folder under `root`)."""
    target = out or run_directory(run, root)
    target.mkdir(parents=True, exist_ok=True)
    (target / RUN_FILE).write_text(json.dumps(run, indent=2, ensure_ascii=False, sort_keys=False), "utf-8")
    (target / REPORT_FILE).write_text(render_html(run), "utf-8")
    return target


# -- SVG plots --------------------------------------------------------------------------------------


def _heat(value: float) -> str:
    """White to dark blue."""
    level = max(0.0, min(1.0, value))
    red = int(255 - 205 * level)
    green = int(255 - 165 * level)
    return f"rgb({red},{green},255)" if level < 1 else "rgb(40,80,200)"


def svg_confusion(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """Heat map, rows = gold, columns = predicted; cells shaded by share of the row."""
    if not labels:
        return ""
    margin = 8 + 7 * max(len(label) for label in labels)
    size = margin + _CELL * len(labels) + 10
    width = size + margin // 2  # rotated column labels lean to the right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{size}" style="{_FONT}" '
        f'role="img" aria-label="confusion matrix">'
    ]
    for i, label in enumerate(labels):
        y = margin + i * _CELL + _CELL / 2 + 4
        parts.append(f'<text x="{margin - 4}" y="{y}" text-anchor="end">{_esc(label)}</text>')
        x = margin + i * _CELL + _CELL / 2
        parts.append(f'<text x="{x}" y="{margin - 4}" transform="rotate(-60 {x} {margin - 4})">{_esc(label)}</text>')
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            x, y = margin + j * _CELL, margin + i * _CELL
            share = count / total
            stroke = ' stroke="#333"' if i == j else ' stroke="#ddd"'
            parts.append(
                f'<rect x="{x}" y="{y}" width="{_CELL}" height="{_CELL}" fill="{_heat(share)}"{stroke}>'
                f"<title>{_esc(labels[i])} → {_esc(labels[j])}: {count}</title></rect>"
            )
            if count:
                colour = "#fff" if share > 0.6 else "#000"
                parts.append(
                    f'<text x="{x + _CELL / 2}" y="{y + _CELL / 2 + 4}" text-anchor="middle" '
                    f'fill="{colour}">{count}</text>'
                )
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(values: Mapping[str, Mapping[str, float]], key: str = "accuracy") -> str:
    """Horizontal bars of `key` (0..1) per group, with the group's count."""
    if not values:
        return ""
    label_width = 8 + 7 * max(len(name) for name in values)
    width = label_width + 300
    height = _BAR_HEIGHT * len(values) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" style="{_FONT}" '
        f'role="img" aria-label="{_esc(key)} by group">'
    ]
    for i, (name, row) in enumerate(values.items()):
        value = float(row.get(key, 0.0))
        y = 4 + i * _BAR_HEIGHT
        parts.append(f'<text x="{label_width - 4}" y="{y + 12}" text-anchor="end">{_esc(name)}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 2}" width="200" height="{_BAR_HEIGHT - 5}" fill="#eee"/>')
        parts.append(
            f'<rect x="{label_width}" y="{y + 2}" width="{200 * max(0.0, min(value, 1.0)):.1f}" '
            f'height="{_BAR_HEIGHT - 5}" fill="{_bar_colour(value)}"/>'
        )
        count = row.get("count")
        suffix = f" (n={int(count)})" if count is not None else ""
        parts.append(f'<text x="{label_width + 204}" y="{y + 12}">{value:.2f}{_esc(suffix)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _bar_colour(value: float) -> str:
    if value >= 0.9:
        return "#2e7d32"
    return "#f9a825" if value >= 0.7 else "#c62828"


def svg_reliability(bins: Sequence[Mapping[str, float]]) -> str:
    """Accuracy against confidence per bin; the diagonal is perfect calibration, dot size the bin's count."""
    size, pad = 220, 30
    inner = size - 2 * pad
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" style="{_FONT}" '
        f'role="img" aria-label="reliability diagram">',
        f'<rect x="{pad}" y="{pad}" width="{inner}" height="{inner}" fill="none" stroke="#999"/>',
        f'<line x1="{pad}" y1="{pad + inner}" x2="{pad + inner}" y2="{pad}" stroke="#bbb" stroke-dasharray="4"/>',
        f'<text x="{size / 2}" y="{size - 6}" text-anchor="middle">confidence</text>',
        f'<text x="10" y="{size / 2}" transform="rotate(-90 10 {size / 2})" text-anchor="middle">accuracy</text>',
    ]
    filled = [b for b in bins if b.get("count")]
    total = sum(float(b["count"]) for b in filled) or 1.0
    points = []
    for b in filled:
        x = pad + inner * float(b["confidence"])
        y = pad + inner * (1 - float(b["accuracy"]))
        points.append(f"{x:.1f},{y:.1f}")
        radius = 2 + 8 * (float(b["count"]) / total) ** 0.5
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="#1565c0" fill-opacity="0.6">'
            f"<title>{b['lower']:.1f}–{b['upper']:.1f}: n={int(b['count'])}, "
            f"accuracy {float(b['accuracy']):.2f}</title></circle>"
        )
    if len(points) > 1:
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#1565c0"/>')
    parts.append("</svg>")
    return "".join(parts)


# -- HTML -------------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#c62828;font-weight:600}.good{color:#2e7d32}.plots{display:flex;flex-wrap:wrap;gap:24px}
.case{max-width:420px;white-space:pre-wrap;word-break:break-word}h2{border-bottom:2px solid #333}
code{background:#f4f4f4;padding:1px 4px}.muted{color:#777}
"""


def _metric_table(metrics: Mapping[str, float], gate: Mapping[str, Any] | None) -> str:
    findings = {f["metric"]: f for f in (gate or {}).get("findings", [])}
    rows = []
    for name, value in metrics.items():
        finding = findings.get(name)
        note = ""
        if finding:
            css = "bad" if finding["status"] in {"regression", "missing"} else "good"
            delta = finding.get("delta")
            delta_text = f"{delta:+.4f}" if isinstance(delta, int | float) else ""
            note = f'<span class="{css}">{_esc(finding["status"])} {delta_text}</span>'
        rows.append(f'<tr><td><code>{_esc(name)}</code></td><td class="num">{value:.4f}</td><td>{note}</td></tr>')
    return "<table><tr><th>metric</th><th>value</th><th>vs baseline</th></tr>" + "".join(rows) + "</table>"


def _per_class_table(table: Mapping[str, Mapping[str, float]]) -> str:
    if not table:
        return ""
    columns = list(next(iter(table.values())).keys())
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><td>{_esc(name)}</td>" + "".join(f'<td class="num">{_format(row.get(c))}</td>' for c in columns) + "</tr>"
        for name, row in table.items()
    )
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return _esc(value if value is not None else "")


def _worst_table(cases: Sequence[Mapping[str, Any]]) -> str:
    if not cases:
        return "<p class='muted'>No failures.</p>"
    columns = [c for c in ("id", "text", "gold", "predicted", "score", "note") if any(c in case for case in cases)]
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="case">{_format(case.get(c, ""))}</td>' for c in columns) + "</tr>"
        for case in cases
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _dataset_section(name: str, details: Mapping[str, Any], info: Mapping[str, Any] | None) -> str:
    parts = [f"<h3>{_esc(name)}</h3>"]
    if info:
        parts.append(
            f"<p class='muted'>{_esc(info.get('path'))} · "
            f"{_esc(info.get('used'))} of {_esc(info.get('rows'))} rows"
            f" · sha256 <code>{_esc(str(info.get('sha256', ''))[:16])}</code></p>"
        )
    if "skipped" in details:
        parts.append(f"<p class='bad'>skipped: {_esc(details['skipped'])}</p>")
    plots = []
    if "confusion" in details:
        confusion = details["confusion"]
        plots.append(
            f"<div><b>confusion (rows gold)</b><br>{svg_confusion(confusion['labels'], confusion['matrix'])}</div>"
        )
    if "reliability" in details:
        plots.append(f"<div><b>calibration</b><br>{svg_reliability(details['reliability'])}</div>")
    for key in ("by_language", "by_marketplace", "by_intent", "by_length"):
        if details.get(key):
            plots.append(f"<div><b>{_esc(key.replace('_', ' '))}</b><br>{svg_bars(details[key])}</div>")
    if plots:
        parts.append('<div class="plots">' + "".join(plots) + "</div>")
    for key in ("per_class", "per_rule", "stages"):
        if details.get(key):
            parts.append(f"<b>{_esc(key.replace('_', ' '))}</b>{_per_class_table(details[key])}")
    if "judge" in details:
        parts.append(f"<b>judge</b><pre>{_esc(json.dumps(details['judge'], indent=1))}</pre>")
    if "worst" in details:
        parts.append(f"<b>worst cases</b>{_worst_table(details['worst'])}")
    return "".join(parts)


def render_html(run: Mapping[str, Any]) -> str:
    gate = run.get("gate")
    title = f"ReplyDesk eval · {run.get('suite')} · {run.get('profile')} · {run.get('created_at')}"
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{_esc(title)}</h1>",
        f"<p class='muted'>{_esc(json.dumps(run.get('environment', {}), ensure_ascii=False))}</p>",
    ]
    if gate:
        verdict = "PASSED" if gate.get("passed") else "FAILED"
        css = "good" if gate.get("passed") else "bad"
        parts.append(f"<p class='{css}'>Gate {verdict} against {_esc(gate.get('baseline'))}</p>")
    parts.append(_metric_table(run.get("metrics", {}), gate))
    for suite in run.get("suites", []):
        parts.append(f"<h2>{_esc(suite['suite'])} <span class='muted'>({suite.get('seconds', 0)} s)</span></h2>")
        if suite.get("skipped"):
            parts.append(f"<p class='bad'>skipped: {_esc(suite['skipped'])}</p>")
        for name, details in suite.get("details", {}).items():
            parts.append(_dataset_section(name, details, suite.get("datasets", {}).get(name)))
    parts.append("<p class='muted'>Bitext and hetPQA derived data: CDLA-Sharing-1.0 (see evals/datasets).</p>")
    parts.append("</body></html>")
    return "\n".join(parts)

"""The compliance gate on long and hostile replies: ``python -m evals.bench_compliance`` (and ``make bench``).

- a 100,000-character reply built from the legitimate set (every language, dense with order ids, tracking
  numbers, prices, dates and Amazon links: the worst ordinary case for the number rules): target ≤ 50 ms;
- the time ratio of a doubled input for the inputs that were quadratic before (spaces, CJK, underscores,
  space-grouped digits, repeated dots, zero-width characters): a linear rule stays near 2.

Times are CPU time of this process (the least of a few runs), so a busy machine does not inflate them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.compliance import check_reply
from evals.compliance_legit import rows as legit_rows

LONG_REPLY = 100_000
TARGET_MS = 50.0
HOSTILE = {
    "spaces": "a" + " " * 8000 + "b",
    "CJK": "中" * 8000,
    "underscores": "a" + "_" * 8000 + "b",
    "space-grouped digits": "1 " * 4000,
    "repeated dots": "a" + "." * 8000 + "b",
    "zero-width characters": "a\u200b" * 4000,
}


def long_reply(length: int = LONG_REPLY) -> str:
    text = "\n\n".join(row["text"] for row in legit_rows())
    return (text * (length // len(text) + 1))[:length]


def cpu_ms(action: Callable[[], object], runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best * 1000


def rows() -> list[tuple[str, str, str]]:
    """Benchmark rows (what, result, note) for the README table."""
    check_reply("warm up: mystore.com")
    text = long_reply()
    found: list[tuple[str, str, str]] = []
    long_ms = cpu_ms(lambda: check_reply(text))
    verdict = "within" if long_ms <= TARGET_MS else "over"
    found.append(
        (
            f"Compliance check of a {len(text):,}-character reply",
            f"{long_ms:.1f} ms",
            f"{verdict} the {TARGET_MS:.0f} ms target; CPU time, best of 5",
        )
    )
    for name, hostile in HOSTILE.items():
        single = cpu_ms(lambda: check_reply(hostile))  # noqa: B023 - measured at once
        double = cpu_ms(lambda: check_reply(hostile + hostile))  # noqa: B023
        found.append(
            (
                f"Compliance, {len(hostile):,} chars of {name}, doubled",
                f"× {double / max(single, 1e-6):.1f}",
                f"{single:.1f} ms → {double:.1f} ms (linear: about × 2)",
            )
        )
    return found


if __name__ == "__main__":
    for what, result, note in rows():
        print(f"| {what} | {result} | {note} |")

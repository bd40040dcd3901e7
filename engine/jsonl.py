"""JSON Lines in and out for the CLI contract: one object out per input line, in order."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from itertools import islice
from typing import IO, Any

from engine.errors import InputError


def read_records(
    stream: IO[str], *, required: tuple[str, ...] = ("id", "text")
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object); blank lines are skipped; a malformed line raises InputError naming it."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {number}: not valid JSON ({exc.msg}). Fix that line and run again.") from None
        if not isinstance(record, dict):
            raise InputError(f'line {number}: expected a JSON object like {{"id": ..., "text": ...}}.')
        missing = [key for key in required if key not in record]
        if missing:
            raise InputError(f"line {number}: missing {', '.join(repr(k) for k in missing)}.")
        if "text" in required and not isinstance(record["text"], str):
            raise InputError(f'line {number}: "text" must be a string.')
        yield number, record


def chunks(records: Iterator[tuple[int, dict[str, Any]]], size: int) -> Iterator[list[dict[str, Any]]]:
    while chunk := [record for _, record in islice(records, size)]:
        yield chunk


def write_record(record: dict[str, Any], stream: IO[str] = sys.stdout) -> None:
    stream.write(json.dumps(record, ensure_ascii=False) + "\n")

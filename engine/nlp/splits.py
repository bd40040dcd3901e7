"""Deterministic held-out split of the Bitext sample, shared by the evals and intent training.

A message is held out when the SHA-256 of its normalised text falls into the first `HELDOUT_PERCENT`
of 100 buckets. The decision depends on the text alone, so training (which sees only texts) and the evals
agree without sharing a list of ids, and the split never moves when rows are added or reordered.
Training must skip every Bitext text for which `is_heldout` is true.
"""

from __future__ import annotations

import hashlib
import re

HELDOUT_PERCENT = 20
SPLIT_SALT = "replydesk-bitext-split-v1"  # change only together with a refreshed baseline
_SPACES = re.compile(r"\s+")


def normalise_for_split(text: str) -> str:
    """Case- and whitespace-insensitive, like training's dedupe key, so near-identical rows fall together."""
    return _SPACES.sub(" ", text.strip().lower())


def text_digest(text: str) -> str:
    return hashlib.sha256(f"{SPLIT_SALT}\n{normalise_for_split(text)}".encode()).hexdigest()


def split_bucket(text: str) -> int:
    """0..99, stable for a given text."""
    return int(text_digest(text)[:8], 16) % 100


def is_heldout(text: str) -> bool:
    """True when the text belongs to the evaluation split: training must not use it."""
    return split_bucket(text) < HELDOUT_PERCENT


def example_id(prefix: str, text: str) -> str:
    """A stable id for a derived example, e.g. ``bitext-3fa1c2d4e5b6``."""
    return f"{prefix}-{text_digest(text)[:12]}"

"""The pluggable NLP parts: one small protocol each, with a real implementation and a fake."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class LanguageGuess:
    language: str  # ISO 639-1 code from the taxonomy, or "und" when nothing fits
    score: float  # calibrated probability in [0, 1]


@dataclass(frozen=True)
class IntentGuess:
    intent: str  # taxonomy intent id: the actionable request
    score: float  # calibrated probability in [0, 1]
    needs_review: bool = False  # low confidence: shown to the agent as "check the intent"
    scores: dict[str, float] = field(default_factory=dict)  # every intent's probability
    secondary: str | None = None  # the runner-up intent, e.g. complaint_feedback beside order_status


@dataclass(frozen=True)
class RetrievedAnswer:
    knowledge_id: int
    question: str
    answer: str
    intent: str
    language: str
    score: float  # hybrid relevance in [0, 1]


class LanguageDetector(Protocol):
    def detect(self, text: str, *, prior: str | None = None) -> LanguageGuess:
        """`prior` is the marketplace's default language, used when the text is short or unclear."""
        ...


class IntentClassifier(Protocol):
    def classify(self, text: str, *, language: str | None = None) -> IntentGuess: ...


class Embedder(Protocol):
    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 array of shape (len(texts), dimension)."""
        ...

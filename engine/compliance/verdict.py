"""The values the gate returns: violations, a verdict over them, and the catalogue entry of a rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["block", "warn"]


@dataclass(frozen=True)
class Violation:
    rule: str  # rule id, see `RULES`
    severity: Severity
    start: int  # character offsets into the checked text: text[start:end] == self.text
    end: int
    text: str
    explanation: str  # one sentence: what Amazon forbids and what to do instead
    field: str = "body"  # which part of the outgoing reply: "body" or "subject"

    def to_dict(self) -> dict[str, object]:
        found: dict[str, object] = {
            "rule": self.rule,
            "severity": self.severity,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "explanation": self.explanation,
        }
        if self.field != "body":
            found["field"] = self.field
        return found


@dataclass(frozen=True)
class Verdict:
    violations: tuple[Violation, ...]

    @property
    def allowed(self) -> bool:
        return not any(v.severity == "block" for v in self.violations)

    @property
    def blocking(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.severity == "block")

    def to_dict(self) -> dict[str, object]:
        return {"allowed": self.allowed, "violations": [v.to_dict() for v in self.violations]}


@dataclass(frozen=True)
class RuleInfo:
    id: str
    severity: Severity
    title: str
    description: str  # also the explanation attached to each violation of the rule


def blocked_message(verdict: Verdict) -> str:
    """What the agent reads when the gate refuses to send: every blocking violation, then what to do."""
    reasons = "; ".join(
        f"{v.rule}{f' in the {v.field}' if v.field != 'body' else ''}: “{v.text}” — {v.explanation}"
        for v in verdict.blocking
    )
    return f"This reply breaks Amazon's messaging rules and was not sent ({reasons}). Edit the text and try again."

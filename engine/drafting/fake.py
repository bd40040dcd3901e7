"""A drafter for tests: returns queued results (or a predictable text) and records every request."""

from __future__ import annotations

from collections import deque

from engine.drafting.protocols import DraftRequest, DraftResult

__all__ = ["FakeDrafter"]


class FakeDrafter:
    name = "fake"

    def __init__(self, *replies: str | DraftResult) -> None:
        self._queue: deque[str | DraftResult] = deque(replies)
        self.history: list[DraftRequest] = []

    def enqueue(self, *replies: str | DraftResult) -> None:
        self._queue.extend(replies)

    def draft(self, request: DraftRequest) -> DraftResult:
        self.history.append(request)
        if self._queue:
            queued = self._queue.popleft()
            if isinstance(queued, DraftResult):
                return queued
            return DraftResult(text=queued, action="reply", drafter=self.name)
        if request.intent == "no_response_needed":
            return DraftResult(text="", action="no_response_needed", drafter=self.name)
        order = f" ({request.order.order_id})" if request.order.order_id else ""
        return DraftResult(
            text=f"Draft for {request.intent} in {request.language}{order}.", action="reply", drafter=self.name
        )

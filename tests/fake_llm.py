"""A fake OpenAI-compatible server at the HTTP seam: the real `openai` client talks to it through
`httpx.MockTransport`, so no SDK internals are patched."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

Responder = Callable[[httpx.Request], httpx.Response]


def completion(content: str | None, *, finish_reason: str = "stop", refusal: str | None = None) -> httpx.Response:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "test-model",
            "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
        },
    )


class FakeLlmServer:
    """Answers /v1/chat/completions from a queue; the last responder repeats. Records every request body."""

    def __init__(self, *responders: Responder | httpx.Response) -> None:
        self.responders = list(responders)
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path != "/v1/chat/completions":
            return httpx.Response(404, json={"error": {"message": "not found"}})
        self.bodies.append(json.loads(request.content))
        responder = self.responders.pop(0) if len(self.responders) > 1 else self.responders[0]
        return responder(request) if callable(responder) else responder

    def sent_text(self) -> str:
        return json.dumps(self.bodies, ensure_ascii=False)

    def document(self, index: int = 0) -> dict[str, Any]:
        """The JSON document the user message carried."""
        document: dict[str, Any] = json.loads(self.bodies[index]["messages"][1]["content"])
        return document


def mock_http(server: FakeLlmServer) -> Any:
    # Typed Any: openai accepts an httpx.Client at run time, but its annotation names the httpx2 fork only.
    return httpx.Client(transport=httpx.MockTransport(server))

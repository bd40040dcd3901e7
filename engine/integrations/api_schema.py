"""The HTTP API's OpenAPI description (served at `/openapi.json`, rendered at `/docs`)."""

from __future__ import annotations

from typing import Any

__all__ = ["OPENAPI", "docs_html"]


def _op(summary: str, *, params: tuple[str, ...] = (), body: dict[str, Any] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": [
            {"name": p, "in": "path" if p == "id" else "query", "schema": {"type": "string"}} for p in params
        ],
        "responses": {
            "200": {"description": "OK"},
            "400": {"description": "Bad input; `error` says what to fix"},
            "401": {"description": "Missing or unknown token"},
            "403": {"description": "The token's role does not allow it"},
            "404": {"description": "Not found, or in a store the token is not scoped to"},
            "409": {"description": "Conflict (e.g. the draft was decided already)"},
            "422": {"description": "The compliance gate blocked the reply"},
            "429": {"description": "Rate limit; retry after `Retry-After` seconds"},
        },
    }
    if body is not None:
        operation["requestBody"] = {"content": {"application/json": {"schema": body}}}
    return operation


def _obj(**properties: str) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": v} for k, v in properties.items()}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "ReplyDesk API", "version": "1"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/conversations": {
            "get": _op(
                "List conversations, newest first; pass `next_cursor` back as `cursor` for the next page",
                params=("status", "store", "intent", "since", "cursor", "limit"),
            )
        },
        "/conversations/{id}": {
            "get": _op("A conversation with its messages, drafts, sends and notes", params=("id",))
        },
        "/conversations/{id}/notes": {"post": _op("Add an internal note", params=("id",), body=_obj(text="string"))},
        "/conversations/{id}/tags": {"post": _op("Add a tag", params=("id",), body=_obj(tag="string"))},
        "/conversations/{id}/status": {
            "post": _op(
                "Set the status: open, hold, closed, no_response_needed", params=("id",), body=_obj(status="string")
            )
        },
        "/drafts/{id}/approve": {
            "post": _op(
                "Approve a draft (optionally with an edited `text`): the compliance gate checks it, then it is queued",
                params=("id",),
                body=_obj(text="string"),
            )
        },
        "/queue": {"get": _op("Queue counts by status and SLA figures")},
    },
}


def docs_html() -> str:
    """A self-contained page listing the operations (no external scripts: the API may run offline)."""
    rows = []
    for path, methods in OPENAPI["paths"].items():
        for method, operation in methods.items():
            params = ", ".join(p["name"] for p in operation["parameters"] if p["in"] == "query")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            fields = ", ".join(body.get("properties", {}))
            rows.append(
                f"<tr><td><code>{method.upper()} {path}</code></td><td>{operation['summary']}</td>"
                f"<td>{params}</td><td>{fields}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ReplyDesk API</title></head><body>"
        "<h1>ReplyDesk API</h1><p>Send <code>Authorization: Bearer rdk_...</code> (from <code>replydesk "
        "token-add</code>). Machine-readable: <a href='/openapi.json'>/openapi.json</a>.</p>"
        "<table border='1' cellpadding='4'><tr><th>Operation</th><th>What it does</th><th>Query</th>"
        f"<th>JSON body</th></tr>{''.join(rows)}</table></body></html>"
    )

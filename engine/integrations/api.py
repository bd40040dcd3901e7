"""The HTTP API (Starlette): what an ERP or CRM pulls, and the few actions it may take.

Every request authenticates a bearer token (`engine.integrations.tokens`), is rate-limited per token, and runs
in one short transaction through the same services as the app, so permissions, the compliance gate, the
outbox and the audit trail (as the token's service agent) apply unchanged. A conversation outside the token's
stores answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from engine.db import Database
from engine.db.base import utcnow
from engine.db.models import Conversation, ConversationStatus, Draft, Store
from engine.errors import ComplianceBlocked, ConflictError, InputError, PermissionDenied
from engine.integrations.api_schema import OPENAPI, docs_html
from engine.integrations.tokens import Unauthenticated, authenticate
from engine.services import claims, conversations
from engine.settings import Settings
from engine.workflow.permissions import Action, Principal, has_store, require

__all__ = ["RateLimiter", "create_app"]

MAX_PAGE = 200
MAX_BODY_BYTES = 64 * 1024
_STATUS_ACTIONS: dict[str, Callable[[Session, Principal, int], Conversation]] = {
    ConversationStatus.OPEN: conversations.reopen,
    ConversationStatus.HOLD: conversations.hold,
    ConversationStatus.CLOSED: conversations.close,
    ConversationStatus.NO_RESPONSE_NEEDED: conversations.mark_no_response_needed,
}


class _NotFound(Exception):
    pass


class RateLimiter:
    """A token bucket per API token: `per_minute` requests, bursts up to the same number."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1, now)
            return 0.0


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _columns(row: Any, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {c.key: _plain(getattr(row, c.key)) for c in row.__table__.columns if c.key not in skip}


def _visible_conversation(session: Session, principal: Principal, conversation_id: int) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or not has_store(principal, conversation.store_id):
        raise _NotFound(f"There is no conversation {conversation_id} in this token's stores.")
    return conversation


def _int(raw: str | None, name: str, default: int | None = None) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"`{name}` must be a whole number, not {raw[:40]!r}.") from None


def _since(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(f"`since` takes an ISO date or time like 2026-12-01T08:00Z, not {raw[:40]!r}.") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def list_conversations(session: Session, principal: Principal, query: dict[str, str]) -> dict[str, Any]:
    require(principal, Action.VIEW_QUEUE)
    limit = min(max(_int(query.get("limit"), "limit", 50) or 50, 1), MAX_PAGE)
    statement = select(Conversation, Store.name).join(Store, Store.id == Conversation.store_id)
    if principal.role != "admin":
        statement = statement.where(Conversation.store_id.in_(sorted(principal.store_ids) or [-1]))
    if status := query.get("status"):
        statement = statement.where(Conversation.status == status)
    if intent := query.get("intent"):
        statement = statement.where(Conversation.intent == intent)
    if store := query.get("store"):
        statement = statement.where(Store.name == store)
    if since := _since(query.get("since")):
        statement = statement.where(Conversation.last_message_at >= since)
    if (cursor := _int(query.get("cursor"), "cursor")) is not None:
        statement = statement.where(Conversation.id < cursor)
    rows = list(session.execute(statement.order_by(Conversation.id.desc()).limit(limit + 1)))
    items = [{**_columns(c, skip=("order_context",)), "store": name} for c, name in rows[:limit]]
    return {"items": items, "next_cursor": items[-1]["id"] if len(rows) > limit else None}


def conversation_detail(session: Session, principal: Principal, conversation_id: int) -> dict[str, Any]:
    _visible_conversation(session, principal, conversation_id)
    view = conversations.get_conversation(session, principal, conversation_id)
    return {
        "conversation": {**_columns(view.conversation), "store": view.conversation.store.name},
        "messages": [_columns(m) for m in view.messages],
        "drafts": [_columns(d) for d in view.drafts],
        "sends": [_columns(o) for o in view.outbox],
        "notes": [_columns(n) for n in view.notes],
    }


def queue_figures(session: Session, principal: Principal, *, now: datetime, at_risk: timedelta) -> dict[str, Any]:
    require(principal, Action.VIEW_QUEUE)
    visible = (
        Conversation.id.is_not(None)
        if principal.role == "admin"
        else Conversation.store_id.in_(sorted(principal.store_ids) or [-1])
    )
    counted = select(Conversation.status, func.count()).where(visible).group_by(Conversation.status)
    by_status: dict[str, int] = {str(status): int(count) for status, count in session.execute(counted)}
    waiting = (Conversation.status.in_((ConversationStatus.OPEN, ConversationStatus.HOLD)), visible)
    deadline = Conversation.amazon_deadline
    overdue = session.scalar(select(func.count()).where(*waiting, deadline < now)) or 0
    due_soon = session.scalar(select(func.count()).where(*waiting, deadline >= now, deadline < now + at_risk)) or 0
    oldest = session.scalar(select(func.min(Conversation.awaiting_since)).where(*waiting))
    return {
        "by_status": by_status,
        "awaiting_reply": sum(v for k, v in by_status.items() if k in ("open", "hold")),
        "overdue": int(overdue),
        "at_risk": int(due_soon),
        "at_risk_minutes": int(at_risk.total_seconds() // 60),
        "oldest_awaiting_since": _plain(oldest),
        "now": now.isoformat(),
    }


def _act(session: Session, principal: Principal, conversation_id: int, action: Callable[[], Any]) -> Any:
    """Run an action; the API never keeps the claim acting takes, so agents are not locked out."""
    conversation = _visible_conversation(session, principal, conversation_id)
    result = action()
    claims.release_own(conversation, principal.agent_id)
    return result


def add_note(session: Session, principal: Principal, conversation_id: int, body: dict[str, Any]) -> dict[str, Any]:
    text = str(body.get("text") or "")
    note = _act(
        session, principal, conversation_id, lambda: conversations.add_note(session, principal, conversation_id, text)
    )
    return _columns(note)


def add_tag(session: Session, principal: Principal, conversation_id: int, body: dict[str, Any]) -> dict[str, Any]:
    tag = str(body.get("tag") or "").strip()
    if not tag:
        raise InputError('Send {"tag": "name"}.')
    conversation = _visible_conversation(session, principal, conversation_id)
    tags = [*list(conversation.tags or []), tag]
    result = _act(
        session, principal, conversation_id, lambda: conversations.set_tags(session, principal, conversation_id, tags)
    )
    return {"tags": result}


def set_status(session: Session, principal: Principal, conversation_id: int, body: dict[str, Any]) -> dict[str, Any]:
    status = str(body.get("status") or "")
    action = _STATUS_ACTIONS.get(status)
    if action is None:
        raise InputError(f"`status` must be one of {', '.join(_STATUS_ACTIONS)}, not {status[:40]!r}.")
    conversation = _act(session, principal, conversation_id, lambda: action(session, principal, conversation_id))
    return {"id": conversation.id, "status": conversation.status}


def approve(session: Session, principal: Principal, draft_id: int, body: dict[str, Any]) -> dict[str, Any]:
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise _NotFound(f"There is no draft {draft_id} in this token's stores.")
    _visible_conversation(session, principal, draft.conversation_id)
    text = body.get("text")
    if text is not None and not isinstance(text, str):
        raise InputError("`text` must be a string (the edited reply), or left out to send the draft as written.")
    item = conversations.approve_draft(session, principal, draft_id, final_text=text)
    return {"draft_id": draft_id, "outbox_id": item.id, "state": item.state}


_ERRORS: tuple[tuple[type[Exception], int], ...] = (
    (_NotFound, 404),
    (ComplianceBlocked, 422),
    (ConflictError, 409),
    (PermissionDenied, 403),
    (InputError, 400),
)


def create_app(db: Database, settings: Settings, *, requests_per_minute: int = 120) -> Starlette:
    limiter = RateLimiter(requests_per_minute)
    at_risk = timedelta(minutes=settings.sla_at_risk_minutes)

    def run(token: str, work: Callable[[Session, Principal], Any]) -> tuple[int, Any]:
        try:
            with db.transaction() as session:
                principal = authenticate(session, token)
                return 200, work(session, principal)
        except Unauthenticated as exc:
            return 401, {"error": str(exc)}
        except tuple(cls for cls, _ in _ERRORS) as exc:
            status = next(code for cls, code in _ERRORS if isinstance(exc, cls))
            return status, {"error": str(exc)}

    def endpoint(work: Callable[[Session, Principal, Request, dict[str, Any]], Any], *, write: bool = False) -> Any:
        async def handle(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header[:7].lower() == "bearer " else ""
            if not token:
                return JSONResponse({"error": "Send `Authorization: Bearer rdk_...` (see `replydesk token-add`)."}, 401)
            wait = limiter.retry_after(token)
            if wait:
                return JSONResponse(
                    {"error": f"Too many requests for this token; retry in {wait:.0f} s."},
                    429,
                    headers={"retry-after": str(max(1, round(wait)))},
                )
            body: dict[str, Any] = {}
            if write:
                raw = await request.body()
                if len(raw) > MAX_BODY_BYTES:
                    return JSONResponse({"error": "The request body is too large (64 KB at most)."}, 413)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return JSONResponse({"error": "The request body is not valid JSON."}, 400)
                if not isinstance(body, dict):
                    return JSONResponse({"error": "Send a JSON object."}, 400)
            status, result = await run_in_threadpool(run, token, lambda s, p: work(s, p, request, body))
            return JSONResponse(result, status)

        return handle

    def path_id(request: Request) -> int:
        return _int(request.path_params["id"], "id") or 0

    routes = [
        Route(
            "/conversations",
            endpoint(lambda s, p, r, b: list_conversations(s, p, dict(r.query_params))),
        ),
        Route("/conversations/{id}", endpoint(lambda s, p, r, b: conversation_detail(s, p, path_id(r)))),
        Route(
            "/conversations/{id}/notes",
            endpoint(lambda s, p, r, b: add_note(s, p, path_id(r), b), write=True),
            methods=["POST"],
        ),
        Route(
            "/conversations/{id}/tags",
            endpoint(lambda s, p, r, b: add_tag(s, p, path_id(r), b), write=True),
            methods=["POST"],
        ),
        Route(
            "/conversations/{id}/status",
            endpoint(lambda s, p, r, b: set_status(s, p, path_id(r), b), write=True),
            methods=["POST"],
        ),
        Route(
            "/drafts/{id}/approve",
            endpoint(lambda s, p, r, b: approve(s, p, path_id(r), b), write=True),
            methods=["POST"],
        ),
        Route("/queue", endpoint(lambda s, p, r, b: queue_figures(s, p, now=utcnow(), at_risk=at_risk))),
        Route("/openapi.json", lambda request: JSONResponse(OPENAPI)),
        Route("/docs", lambda request: HTMLResponse(docs_html())),
    ]
    return Starlette(routes=routes)

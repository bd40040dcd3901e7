"""The worker's webhook pass: POST due deliveries, record each outcome, back off, give up, disable.

At least once: a delivery is claimed (leased) in one short transaction, POSTed with no transaction open, and its
outcome recorded in another; a crash in between sends it again after the lease, with the same `webhook-id`, so
receivers can drop the duplicate. Retries back off exponentially with jitter for `RETRY_WINDOW`; an endpoint
that fails every delivery for `DISABLE_AFTER` is disabled and shown on the health page.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db import Database
from engine.db.base import utcnow
from engine.db.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from engine.errors import ReplyDeskError
from engine.integrations.events import TEST_EVENT, emit
from engine.integrations.webhooks import endpoint_secret, get_endpoint, signed_headers
from engine.settings import Settings

__all__ = ["DeliveryCounts", "deliver_due", "payload_for", "retry_delay", "send_test", "webhook_pass"]

RETRY_WINDOW = timedelta(hours=24)
DISABLE_AFTER = timedelta(hours=24)
LEASE = timedelta(minutes=5)  # a claimed delivery is retried after this if its worker died mid-POST
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=6)
BATCH = 50
_BATCHES_PER_PASS = 20
TIMEOUT_SECONDS = 10.0
_ERROR_CHARS = 300


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at 6 h, each scaled by a random 0.5-1.0 so receivers are not hit in step."""
    exponent = min(max(attempts - 1, 0), 20)
    delay = min(BASE_DELAY * (2**exponent), MAX_DELAY)
    return delay * (rng or random).uniform(0.5, 1.0)


def payload_for(payload: dict[str, Any], include_text: bool) -> bytes:
    data = dict(payload.get("data") or {})
    if not include_text:
        data.pop("text", None)
    return json.dumps({**payload, "data": data}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass
class DeliveryCounts:
    delivered: int = 0
    retrying: int = 0
    gave_up: int = 0
    disabled: int = 0
    results: list[tuple[int, int | None, str | None]] = field(default_factory=list)  # (delivery, status, error)

    def line(self) -> str:
        return (
            f"{self.delivered} delivered, {self.retrying} to retry, {self.gave_up} given up, "
            f"{self.disabled} endpoints disabled"
        )


@dataclass(frozen=True)
class _Claimed:
    delivery_id: int
    endpoint_id: int
    url: str
    secret: str
    message_id: str
    body: bytes


def _claim(session: Session, settings: Settings, now: datetime, delivery_id: int | None = None) -> list[_Claimed]:
    query = (
        select(WebhookDelivery, WebhookEndpoint, WebhookEvent)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
    )
    if delivery_id is not None:
        query = query.where(WebhookDelivery.id == delivery_id)
    else:
        query = (
            query.where(
                WebhookDelivery.state == "pending",
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.active.is_(True),
            )
            .order_by(WebhookDelivery.id)
            .limit(BATCH)
        )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
    claimed = []
    for delivery, endpoint, event in session.execute(query):
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.next_attempt_at = now + LEASE
        try:
            secret = endpoint_secret(settings, endpoint)
        except ReplyDeskError as exc:  # this endpoint cannot sign; the others still go out
            delivery.last_error = str(exc)
            continue
        body = payload_for(event.payload, endpoint.include_text)
        claimed.append(_Claimed(delivery.id, endpoint.id, endpoint.url, secret, f"msg_{event.id}", body))
    return claimed


def _record(
    session: Session, claimed: _Claimed, status: int | None, error: str | None, now: datetime, rng: random.Random
) -> tuple[str, bool]:
    """Store one attempt's outcome; returns the delivery's state and whether the endpoint was just disabled."""
    delivery = session.get(WebhookDelivery, claimed.delivery_id)
    endpoint = session.get(WebhookEndpoint, claimed.endpoint_id)
    if delivery is None or endpoint is None:  # deleted meanwhile
        return "gone", False
    delivery.last_status, delivery.last_error = status, error
    if error is None:
        delivery.state, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
        endpoint.failing_since = None
        return "delivered", False
    if now - delivery.created_at >= RETRY_WINDOW:
        delivery.state, delivery.next_attempt_at = "failed", None
    else:
        delivery.next_attempt_at = now + retry_delay(delivery.attempts, rng)
    endpoint.failing_since = endpoint.failing_since or now
    disabled = endpoint.active and now - endpoint.failing_since >= DISABLE_AFTER
    if disabled:
        endpoint.active = False
        endpoint.disabled_reason = (
            f"Disabled automatically at {now:%Y-%m-%d %H:%M} UTC: every delivery failed for "
            f"{DISABLE_AFTER.total_seconds() / 3600:.0f} h (last: {error}). Fix the receiver, then enable the "
            "endpoint again: the events queued meanwhile go out then."
        )
    return delivery.state, disabled


def _release(session: Session, delivery_ids: list[int], until: datetime | None, now: datetime) -> None:
    """Hand back deliveries not tried because their endpoint just failed: they wait with it, attempts unchanged."""
    for delivery_id in delivery_ids:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is not None and delivery.state == "pending":
            delivery.attempts = max(delivery.attempts - 1, 0)
            delivery.next_attempt_at = until or now + BASE_DELAY


def _post(client: httpx.Client, claimed: _Claimed) -> tuple[int | None, str | None]:
    headers = signed_headers(claimed.secret, claimed.message_id, int(time.time()), claimed.body)
    try:
        response = client.post(claimed.url, content=claimed.body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"[:_ERROR_CHARS]


def _send(
    db: Database, claimed: list[_Claimed], client: httpx.Client | None, now: datetime, rng: random.Random
) -> DeliveryCounts:
    counts = DeliveryCounts()
    failed_until: dict[int, datetime | None] = {}  # endpoints that failed in this pass
    skipped: dict[int, list[int]] = {}
    own_client = client is None
    http = client or httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False)
    try:
        for item in claimed:
            if item.endpoint_id in failed_until:
                skipped.setdefault(item.endpoint_id, []).append(item.delivery_id)
                continue
            status, error = _post(http, item)  # no transaction is open here
            with db.transaction() as session:
                state, disabled = _record(session, item, status, error, now, rng)
                if error is not None:
                    delivery = session.get(WebhookDelivery, item.delivery_id)
                    failed_until[item.endpoint_id] = delivery.next_attempt_at if delivery else None
            counts.results.append((item.delivery_id, status, error))
            counts.delivered += state == "delivered"
            counts.retrying += state == "pending"
            counts.gave_up += state == "failed"
            counts.disabled += disabled
    finally:
        if own_client:
            http.close()
        if skipped:
            with db.transaction() as session:
                for endpoint_id, delivery_ids in skipped.items():
                    _release(session, delivery_ids, failed_until.get(endpoint_id), now)
    return counts


def deliver_due(
    db: Database,
    settings: Settings,
    *,
    now: datetime | None = None,
    client: httpx.Client | None = None,
    rng: random.Random | None = None,
) -> DeliveryCounts:
    """One pass over due deliveries (at most `BATCH`)."""
    now = now or utcnow()
    with db.transaction() as session:
        claimed = _claim(session, settings, now)
    return _send(db, claimed, client, now, rng or random.Random())


def send_test(
    db: Database, settings: Settings, endpoint_id: int, *, client: httpx.Client | None = None
) -> tuple[int | None, str | None]:
    """Send a `webhook.test` event to one endpoint now (even a disabled one); returns (HTTP status, error)."""
    now = utcnow()
    with db.transaction() as session:
        endpoint = get_endpoint(session, endpoint_id)
        event = emit(
            session,
            TEST_EVENT,
            {"endpoint_id": endpoint.id, "message": "ReplyDesk test"},
            store_id=None,
            only_endpoint_id=endpoint.id,
        )
        session.flush()
        delivery_id = session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.event_id == event.id))
        if delivery_id is None:  # a disabled endpoint gets no delivery from emit: queue it explicitly
            delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, next_attempt_at=now, created_at=now)
            session.add(delivery)
            session.flush()
            delivery_id = delivery.id
    with db.transaction() as session:
        claimed = _claim(session, settings, now, delivery_id)
    if not claimed:
        return None, "the endpoint's secret cannot be read; rotate it"
    counts = _send(db, claimed, client, now, random.Random())
    _, status, error = counts.results[0]
    return status, error


def webhook_pass(db: Database, settings: Settings, *, now: datetime | None = None) -> str:
    """The worker's step: write due SLA events, then deliver; returns a line to print, empty when idle."""
    from engine.integrations.events import emit_sla_events

    now = now or utcnow()
    with db.transaction() as session:
        sla_events = emit_sla_events(session, now=now, at_risk_lead=timedelta(minutes=settings.sla_at_risk_minutes))
    counts = DeliveryCounts()
    for _ in range(_BATCHES_PER_PASS):  # catch up on a backlog, but hand the loop back now and then
        batch = deliver_due(db, settings, now=now)
        counts.delivered += batch.delivered
        counts.retrying += batch.retrying
        counts.gave_up += batch.gave_up
        counts.disabled += batch.disabled
        counts.results += batch.results
        if len(batch.results) < BATCH:
            break
    if not sla_events and not counts.results:
        return ""
    return f"{sla_events} SLA events, {counts.line()}"

"""Webhook endpoints and Standard Webhooks signatures (https://www.standardwebhooks.com).

Each request carries `webhook-id` (the same for every retry of one event), `webhook-timestamp` (Unix seconds)
and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the endpoint's
secret, `whsec_` + base64 of 24 random bytes. Managing endpoints needs the admin role; `actor=None` is the
operator on the command line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import crypto
from engine.db.base import utcnow
from engine.db.models import Store, WebhookDelivery, WebhookEndpoint, WebhookEvent
from engine.errors import ConfigError, InputError
from engine.integrations.events import EVENT_TYPES
from engine.services import audit
from engine.settings import Settings
from engine.workflow.permissions import Action, Principal, require

__all__ = [
    "DeliveryRow",
    "EndpointView",
    "add_endpoint",
    "deliveries",
    "disabled_by_failures",
    "endpoint_secret",
    "generate_secret",
    "get_endpoint",
    "list_endpoints",
    "parse_events",
    "replay_delivery",
    "rotate_secret",
    "set_active",
    "sign",
    "signed_headers",
    "update_endpoint",
]

SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _secret_key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("A webhook secret is not valid base64. Rotate the endpoint's secret.") from None


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "ReplyDesk-Webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def parse_events(raw: str | Sequence[str]) -> list[str]:
    names = [part.strip() for part in (raw.split(",") if isinstance(raw, str) else raw) if part.strip()]
    if names == ["*"] or names == ["all"]:
        return list(EVENT_TYPES)
    unknown = [name for name in names if name not in EVENT_TYPES]
    if unknown or not names:
        raise InputError(
            f"Unknown or missing webhook events: {', '.join(unknown) or 'none given'}. "
            f"Choose from {', '.join(EVENT_TYPES)} (or `all`)."
        )
    return list(dict.fromkeys(names))


def _check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or len(url) > 2000:
        raise InputError(
            f"{url[:100]!r} is not an http(s) URL. Give the receiver's full address, e.g. https://erp/hook."
        )
    return url


def _require_admin(actor: Principal | None) -> int | None:
    if actor is None:
        return None
    require(actor, Action.MANAGE_SETTINGS)
    return actor.agent_id


def _store_ids(session: Session, store_names: Sequence[str]) -> list[int]:
    ids = []
    for name in store_names:
        store_id = session.scalar(select(Store.id).where(Store.name == name))
        if store_id is None:
            raise InputError(f"There is no store named {name!r}. List the stores with `replydesk store-list`.")
        ids.append(store_id)
    return ids


@dataclass(frozen=True)
class EndpointView:
    id: int
    url: str
    events: list[str]
    stores: list[str]  # empty: every store
    include_text: bool
    active: bool
    disabled_reason: str | None
    failing_since: datetime | None
    pending: int
    delivered: int
    failed: int


def add_endpoint(
    session: Session,
    settings: Settings,
    actor: Principal | None,
    url: str,
    events: Sequence[str],
    *,
    store_names: Sequence[str] = (),
    include_text: bool = False,
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its secret, shown once: only the encrypted form is kept."""
    actor_id = _require_admin(actor)
    secret = generate_secret()
    endpoint = WebhookEndpoint(
        url=_check_url(url),
        secret_encrypted=crypto.encrypt(settings, secret),
        events=parse_events(events),
        store_ids=_store_ids(session, store_names),
        include_text=include_text,
        active=True,
        created_by_id=actor_id,
    )
    session.add(endpoint)
    session.flush()
    audit.record(
        session, "webhook.add", "webhook_endpoint", endpoint.id, actor_id=actor_id, after={"url": endpoint.url}
    )
    return endpoint, secret


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise InputError(f"There is no webhook endpoint {endpoint_id}. List them with `replydesk webhook-list`.")
    return endpoint


def endpoint_secret(settings: Settings, endpoint: WebhookEndpoint) -> str:
    try:
        return crypto.decrypt(settings, endpoint.secret_encrypted)
    except ConfigError:
        raise ConfigError(
            f"The secret of webhook endpoint {endpoint.id} cannot be decrypted: the installation's secret key "
            "changed. Rotate the endpoint's secret and give the new one to the receiver."
        ) from None


def update_endpoint(
    session: Session,
    actor: Principal | None,
    endpoint_id: int,
    *,
    url: str,
    events: Sequence[str],
    store_names: Sequence[str],
    include_text: bool,
) -> WebhookEndpoint:
    actor_id = _require_admin(actor)
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.url = _check_url(url)
    endpoint.events = parse_events(events)
    endpoint.store_ids = _store_ids(session, store_names)
    endpoint.include_text = include_text
    audit.record(
        session, "webhook.edit", "webhook_endpoint", endpoint.id, actor_id=actor_id, after={"url": endpoint.url}
    )
    return endpoint


def set_active(session: Session, actor: Principal | None, endpoint_id: int, active: bool) -> WebhookEndpoint:
    """Disable, or enable again: deliveries queued while it was disabled go out from the next pass."""
    actor_id = _require_admin(actor)
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.active = active
    if active:
        endpoint.disabled_reason, endpoint.failing_since = None, None
        now = utcnow()
        for delivery in session.scalars(
            select(WebhookDelivery).where(
                WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.state == "pending"
            )
        ):
            delivery.next_attempt_at = now
    action = "webhook.enable" if active else "webhook.disable"
    audit.record(session, action, "webhook_endpoint", endpoint.id, actor_id=actor_id)
    return endpoint


def rotate_secret(session: Session, settings: Settings, actor: Principal | None, endpoint_id: int) -> str:
    actor_id = _require_admin(actor)
    endpoint = get_endpoint(session, endpoint_id)
    secret = generate_secret()
    endpoint.secret_encrypted = crypto.encrypt(settings, secret)
    audit.record(session, "webhook.rotate_secret", "webhook_endpoint", endpoint.id, actor_id=actor_id)
    return secret


def list_endpoints(session: Session) -> list[EndpointView]:
    counts: dict[tuple[int, str], int] = {
        (endpoint_id, state): count
        for endpoint_id, state, count in session.execute(
            select(WebhookDelivery.endpoint_id, WebhookDelivery.state, func.count()).group_by(
                WebhookDelivery.endpoint_id, WebhookDelivery.state
            )
        )
    }
    names: dict[int, str] = {store_id: name for store_id, name in session.execute(select(Store.id, Store.name))}
    return [
        EndpointView(
            id=e.id,
            url=e.url,
            events=list(e.events),
            stores=[names.get(store_id, str(store_id)) for store_id in e.store_ids],
            include_text=e.include_text,
            active=e.active,
            disabled_reason=e.disabled_reason,
            failing_since=e.failing_since,
            pending=counts.get((e.id, "pending"), 0),
            delivered=counts.get((e.id, "delivered"), 0),
            failed=counts.get((e.id, "failed"), 0),
        )
        for e in session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))
    ]


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    event_id: int
    event_type: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


def deliveries(session: Session, endpoint_id: int, *, limit: int = 100) -> list[DeliveryRow]:
    """The endpoint's delivery log, newest first."""
    rows = session.execute(
        select(WebhookDelivery, WebhookEvent.event_type)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return [
        DeliveryRow(
            d.id,
            d.event_id,
            event_type,
            d.state,
            d.attempts,
            d.last_status,
            d.last_error,
            d.next_attempt_at,
            d.delivered_at,
            d.created_at,
        )
        for d, event_type in rows
    ]


def replay_delivery(session: Session, actor: Principal | None, delivery_id: int) -> WebhookDelivery:
    """Queue a delivery again (delivered or given up): the worker sends it on its next pass, same webhook-id."""
    actor_id = _require_admin(actor)
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise InputError(f"There is no webhook delivery {delivery_id}. See the endpoint's deliveries in the app.")
    delivery.state, delivery.next_attempt_at, delivery.attempts = "pending", utcnow(), 0
    delivery.created_at = utcnow()  # the retry window starts again
    audit.record(session, "webhook.replay", "webhook_delivery", delivery.id, actor_id=actor_id)
    return delivery


def disabled_by_failures(session: Session) -> list[tuple[int, str, str]]:
    """Endpoints that persistent failures disabled: (id, url, reason), for the health page's alerts."""
    rows = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.url, WebhookEndpoint.disabled_reason)
        .where(WebhookEndpoint.active.is_(False), WebhookEndpoint.disabled_reason.is_not(None))
        .order_by(WebhookEndpoint.id)
    )
    return [(endpoint_id, url, reason or "") for endpoint_id, url, reason in rows]

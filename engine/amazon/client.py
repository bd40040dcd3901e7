"""The Selling Partner API client: order context, messaging actions, buyer locale, proactive messages.

SP-API cannot read or answer buyer messages (those travel by e-mail relay); it only tells us about the
order and sends the few templated message types Amazon allows. Every call goes through one loop that
takes a rate-limit token, attaches the LWA access token, retries 429/5xx with jittered backoff (or the
server's `Retry-After`) and translates failures into `AmazonApiError` messages an agent can act on.
"""

from __future__ import annotations

import logging
import platform
import random
import re
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any
from urllib.parse import quote

import httpx

from engine.amazon.lwa import LWA_TOKEN_URL, AccessTokenSource, LwaCredentials, LwaTokenProvider
from engine.amazon.models import (
    ATTACHMENT_TYPES,
    MAX_ATTACHMENTS,
    TEXT_LIMITS,
    MessageAttachment,
    OrderInfo,
    OrderItem,
    action_names_from_payload,
    order_context_from_info,
    order_info_from_payload,
    order_items_from_payload,
)
from engine.amazon.ratelimit import Clock, RateLimiter, Sleep, UsagePlan, backoff_delay, parse_retry_after
from engine.compliance import blocked_message, check_outgoing
from engine.drafting.protocols import OrderContext
from engine.errors import AmazonApiError, ComplianceBlocked, ConfigError, InputError, ReplyDeskError
from engine.taxonomy import MARKETPLACES, Marketplace, load_taxonomy

log = logging.getLogger(__name__)

REGIONS = ("na", "eu", "fe")
# Amazon's region of every marketplace code; ids come from the taxonomy, so a code listed here but
# missing from knowledge/taxonomy.json is refused with a hint rather than guessed.
MARKETPLACE_REGIONS: dict[str, str] = {
    **dict.fromkeys(("US", "CA", "MX", "BR"), "na"),
    **dict.fromkeys(
        ("UK", "IE", "DE", "FR", "IT", "ES", "NL", "BE", "SE", "PL", "TR", "AE", "SA", "EG", "IN", "ZA"), "eu"
    ),
    **dict.fromkeys(("JP", "AU", "SG"), "fe"),
}
# Documented default usage plans that differ from the 1/s, burst 5 default (ordersV0.json).
OPERATION_PLANS: dict[str, UsagePlan] = {
    "getOrder": UsagePlan(0.5, 30),
    "getOrderItems": UsagePlan(0.5, 30),
}
MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 32.0
MAX_RETRY_AFTER_SECONDS = 300.0  # a worker must not hang for hours on a hostile header
HTTP_TIMEOUT = httpx.Timeout(20.0, connect=10.0)

_HTML_TAG = re.compile(r"<\s*(?:/\s*)?[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?/?\s*>|<!--|&[a-zA-Z]+;|&#\d+;")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def endpoint_for(region: str, *, sandbox: bool = False) -> str:
    """Base URL of a region: "eu" -> https://sellingpartnerapi-eu.amazon.com (sandbox. prefix if asked)."""
    region = region.strip().lower()
    if region not in REGIONS:
        raise ConfigError(f"Unknown SP-API region {region!r}; use one of {', '.join(REGIONS)}.")
    return f"https://{'sandbox.' if sandbox else ''}sellingpartnerapi-{region}.amazon.com"


def resolve_marketplace(marketplace: str) -> Marketplace:
    """A taxonomy marketplace from its code ("DE") or Amazon id ("A1PA6795UKMFR9")."""
    key = marketplace.strip()
    found = MARKETPLACES.get(key.upper()) or load_taxonomy().marketplace_by_id(key)
    if found is None:
        raise InputError(
            f"Unknown marketplace {marketplace!r}; use a code such as DE or US, or add it to knowledge/taxonomy.json."
        )
    return found


def region_for_marketplace(marketplace: str) -> str:
    code = resolve_marketplace(marketplace).code
    region = MARKETPLACE_REGIONS.get(code)
    if region is None:
        raise ConfigError(f"No SP-API region is known for marketplace {code}; add it to MARKETPLACE_REGIONS.")
    return region


def check_message_text(message_type: str, text: str, attachments: Sequence[MessageAttachment] = ()) -> None:
    """Refuse, before any request, what Amazon would refuse or punish (limits from messaging.json)."""
    limit = TEXT_LIMITS.get(message_type)
    if limit is None:
        raise InputError(
            f"ReplyDesk cannot send the message type {message_type!r}; it sends {', '.join(sorted(TEXT_LIMITS))}."
        )
    if not text.strip():
        raise InputError(f"The {message_type} message is empty; write the text to send.")
    if len(text) > limit:
        raise InputError(
            f"The {message_type} message has {len(text)} characters; Amazon accepts at most {limit}. Shorten it."
        )
    if attachments and message_type not in ATTACHMENT_TYPES:
        raise InputError(f"Amazon does not accept attachments on {message_type} messages; remove them.")
    if len(attachments) > MAX_ATTACHMENTS:
        raise InputError(f"Amazon accepts at most {MAX_ATTACHMENTS} attachments per message.")
    if _HTML_TAG.search(text):
        raise ComplianceBlocked("The message contains HTML; Amazon accepts plain text only. Remove the markup.")
    if _EMAIL.search(text):
        raise ComplianceBlocked(
            "The message contains an e-mail address; Amazon forbids e-mail addresses in buyer messages. Remove it."
        )
    # the same gate as every e-mail reply, on every field the buyer sees
    file_names = {f"file name of attachment {number}": a.file_name for number, a in enumerate(attachments, 1)}
    verdict = check_outgoing(text, message_type=message_type, fields=file_names)
    if not verdict.allowed:
        raise ComplianceBlocked(blocked_message(verdict))


def _user_agent() -> str:
    try:
        version = metadata.version("replydesk")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    return f"ReplyDesk/{version} (Language=Python/{platform.python_version()})"


def _amazon_errors(response: httpx.Response) -> str:
    """Amazon's `errors[]` as one line ("InvalidInput: Invalid Input"), or a short body excerpt."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or "no details"
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return "no details"
    parts = []
    for err in errors:
        text = f"{err.get('code', 'Error')}: {err.get('message', '')}".strip()
        if err.get("details"):
            text += f" ({err['details']})"
        parts.append(text)
    return "; ".join(parts)


def _token_rejected(response: httpx.Response) -> bool:
    # An expired or revoked token comes back as 403 with a token wording; a missing role does not.
    return response.status_code == 401 or (response.status_code == 403 and "token" in _amazon_errors(response).lower())


class SpApiClient:
    """One seller's SP-API connection in one region. Thread-safe; share one instance per seller."""

    def __init__(
        self,
        tokens: AccessTokenSource,
        *,
        region: str,
        sandbox: bool = False,
        http_client: httpx.Client,
        endpoint: str | None = None,
        limiter: RateLimiter | None = None,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        owns_http_client: bool = False,
    ) -> None:
        self.region = region.strip().lower()
        self.endpoint = (endpoint or endpoint_for(self.region, sandbox=sandbox)).rstrip("/")
        self.sandbox = sandbox
        self._tokens = tokens
        self._http = http_client
        self._owns_http = owns_http_client
        self._limiter = limiter or RateLimiter(plans=OPERATION_PLANS, sleep=sleep)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._max_attempts = max(1, max_attempts)
        self._user_agent = _user_agent()

    @classmethod
    def from_credentials(
        cls,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        region: str,
        sandbox: bool = False,
        http_client: httpx.Client | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
        endpoint: str | None = None,
        token_url: str = LWA_TOKEN_URL,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> SpApiClient:
        missing = [
            name
            for name, value in (
                ("client id", client_id),
                ("client secret", client_secret),
                ("refresh token", refresh_token),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"SP-API is not configured: the LWA {', '.join(missing)} is missing.")
        owns = http_client is None
        http = http_client or httpx.Client(timeout=HTTP_TIMEOUT)
        tokens = LwaTokenProvider(
            LwaCredentials(client_id, client_secret, refresh_token), http, token_url=token_url, clock=clock
        )
        return cls(
            tokens,
            region=region,
            sandbox=sandbox,
            http_client=http,
            endpoint=endpoint,
            limiter=RateLimiter(plans=OPERATION_PLANS, clock=clock, sleep=sleep),
            sleep=sleep,
            rng=rng,
            max_attempts=max_attempts,
            owns_http_client=owns,
        )

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> SpApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- operations --------------------------------------------------------------------------------

    def get_order(self, order_id: str, marketplace: str) -> OrderInfo:
        self._marketplace(marketplace)
        body = self._call("getOrder", "GET", f"/orders/v0/orders/{_path_id(order_id)}", order_id=order_id)
        return order_info_from_payload(body.get("payload") or {}, order_id)

    def get_order_items(self, order_id: str, marketplace: str) -> list[OrderItem]:
        self._marketplace(marketplace)
        items: list[OrderItem] = []
        params: dict[str, str] = {}
        while True:
            body = self._call(
                "getOrderItems",
                "GET",
                f"/orders/v0/orders/{_path_id(order_id)}/orderItems",
                params=params,
                order_id=order_id,
            )
            payload = body.get("payload") or {}
            items.extend(order_items_from_payload(payload))
            next_token = payload.get("NextToken")
            if not next_token:
                return items
            params = {"NextToken": str(next_token)}

    def get_order_context(self, order_id: str, marketplace: str) -> OrderContext:
        return order_context_from_info(self.get_order(order_id, marketplace))

    def get_messaging_actions(self, order_id: str, marketplace: str) -> list[str]:
        mp = self._marketplace(marketplace)
        body = self._call(
            "getMessagingActionsForOrder",
            "GET",
            f"/messaging/v1/orders/{_path_id(order_id)}",
            params={"marketplaceIds": mp.marketplace_id},
            order_id=order_id,
        )
        return action_names_from_payload(body)

    def get_buyer_locale(self, order_id: str, marketplace: str) -> str | None:
        mp = self._marketplace(marketplace)
        body = self._call(
            "getAttributes",
            "GET",
            f"/messaging/v1/orders/{_path_id(order_id)}/attributes",
            params={"marketplaceIds": mp.marketplace_id},
            order_id=order_id,
        )
        locale = (body.get("buyer") or {}).get("locale")
        return str(locale) if locale else None

    def send_message(
        self,
        order_id: str,
        marketplace: str,
        message_type: str,
        text: str,
        *,
        attachments: Sequence[MessageAttachment] = (),
    ) -> None:
        """Send one proactive message; refused locally (no request) when it breaks Amazon's rules."""
        check_message_text(message_type, text, attachments)
        mp = self._marketplace(marketplace)
        allowed = self.get_messaging_actions(order_id, marketplace)
        if message_type not in allowed:
            raise AmazonApiError(
                f"Amazon does not allow a {message_type} message for order {order_id} right now "
                f"(allowed: {', '.join(allowed) or 'none'}). Reply through the buyer's e-mail thread instead.",
                code="action_not_allowed",
            )
        body: dict[str, Any] = {"text": text}
        if attachments:
            body["attachments"] = [
                {"uploadDestinationId": a.upload_destination_id, "fileName": a.file_name} for a in attachments
            ]
        self._call(
            message_type,
            "POST",
            f"/messaging/v1/orders/{_path_id(order_id)}/messages/{message_type}",
            params={"marketplaceIds": mp.marketplace_id},
            json_body=body,
            order_id=order_id,
        )

    # -- plumbing ----------------------------------------------------------------------------------

    def _marketplace(self, marketplace: str) -> Marketplace:
        mp = resolve_marketplace(marketplace)
        region = region_for_marketplace(mp.code)
        if region != self.region:
            raise ConfigError(
                f"Marketplace {mp.code} belongs to the SP-API region {region}, but this connection is for "
                f"{self.region}; connect the seller's {region} account to look up its orders."
            )
        return mp

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        order_id: str,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        failures = 0
        token_refreshed = False
        while True:
            self._limiter.acquire(operation)
            headers = {
                "x-amz-access-token": self._tokens.access_token(),
                "user-agent": self._user_agent,
                "accept": "application/json",
            }
            try:
                response = self._http.request(
                    method, self.endpoint + path, params=params or None, json=json_body, headers=headers
                )
            except httpx.TransportError as exc:
                failures += 1
                if failures >= self._max_attempts:
                    raise AmazonApiError(
                        f"Could not reach the SP-API ({type(exc).__name__}) after {failures} attempts; "
                        "check the network and try again.",
                        code="unreachable",
                    ) from exc
                self._sleep(
                    backoff_delay(failures - 1, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS, rng=self._rng)
                )
                continue
            except httpx.HTTPError as exc:  # not a network hiccup (e.g. a body that will not decode)
                raise AmazonApiError(
                    f"The SP-API call {operation} failed ({type(exc).__name__}); try again later.", code="http"
                ) from exc
            self._limiter.adopt_header(operation, response.headers.get("x-amzn-RateLimit-Limit"))
            status = response.status_code
            if 200 <= status < 300:
                return _json_object(response, operation)
            if _token_rejected(response) and not token_refreshed:
                token_refreshed = True
                self._tokens.invalidate()
                continue
            if status == 429 or status >= 500:
                failures += 1
                if failures >= self._max_attempts:
                    raise AmazonApiError(
                        f"Amazon answered HTTP {status} to {operation} {failures} times in a row "
                        f"({_amazon_errors(response)}); try again in a few minutes.",
                        status=status,
                        code="throttled" if status == 429 else "server_error",
                    )
                delay = self._retry_delay(response, failures)
                log.warning("SP-API %s answered %s; retry %d in %.2f s", operation, status, failures, delay)
                self._sleep(delay)
                continue
            raise _http_error(response, operation, order_id)

    def _retry_delay(self, response: httpx.Response, failures: int) -> float:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_SECONDS)
        return backoff_delay(failures - 1, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS, rng=self._rng)


def _path_id(order_id: str) -> str:
    if not order_id or not order_id.strip():
        raise InputError("The order id is empty; give an Amazon order id such as 123-1234567-1234567.")
    return quote(order_id.strip(), safe="")


def _json_object(response: httpx.Response, operation: str) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError as exc:
        raise AmazonApiError(
            f"Amazon sent a response to {operation} that is not JSON; try again later.", status=response.status_code
        ) from exc
    return body if isinstance(body, dict) else {}


def _http_error(response: httpx.Response, operation: str, order_id: str) -> AmazonApiError:
    status = response.status_code
    details = _amazon_errors(response)
    if status == 400:
        message = f"Amazon rejected {operation} for order {order_id}: {details}. Check the order id and marketplace."
        return AmazonApiError(message, status=status, code="invalid_input")
    if status == 401:
        message = (
            f"Amazon rejected the access token for {operation} ({details}). Check that the LWA client id, client "
            "secret and refresh token belong to the same app and seller."
        )
        return AmazonApiError(message, status=status, code="unauthorized")
    if status == 403:
        message = (
            f"Amazon denied access to {operation} ({details}). Make sure the app is authorised for this seller "
            "account and has the Buyer Communication role (Seller Central → Apps and Services → Manage Your "
            "Apps), then re-authorise it to get a new refresh token."
        )
        return AmazonApiError(message, status=status, code="forbidden")
    if status == 404:
        message = f"Amazon does not know order {order_id} in this marketplace ({details}). Check the order id."
        return AmazonApiError(message, status=status, code="not_found")
    return AmazonApiError(f"Amazon answered HTTP {status} to {operation}: {details}.", status=status)


def order_context_or_none(
    client: SpApiClient | None, order_id: str | None, marketplace: str | None
) -> tuple[OrderContext | None, str]:
    """Order context when it can be had, else None and the reason; never raises, so drafting carries on."""
    if client is None:
        return None, "not connected"
    if not order_id:
        return None, "no order id"
    if not marketplace:
        return None, "no marketplace"
    try:
        return client.get_order_context(order_id, marketplace), "ok"
    except ReplyDeskError as exc:
        log.warning("Order context for %s unavailable: %s", order_id, exc)
        return None, str(exc)

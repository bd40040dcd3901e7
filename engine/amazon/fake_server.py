"""A small fake of Login with Amazon and the SP-API paths ReplyDesk uses, for tests and manual runs.

Use `FakeSpApi().handler` with `httpx.MockTransport`, or serve it on a loopback port:

    python -m engine.amazon.fake_server --port 8765

It mirrors the static sandbox (order 123-1234567-1234567 succeeds, 123-1234567-0000000 answers 400
InvalidInput), records every request, only accepts the last access token it issued, and can be told to
throttle (429 + Retry-After) or fail (5xx) a number of times before answering normally.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx

SANDBOX_ORDER_ID = "123-1234567-1234567"
SANDBOX_INVALID_ORDER_ID = "123-1234567-0000000"
SANDBOX_ACTIONS = (
    "confirmCustomizationDetails",
    "confirmDeliveryDetails",
    "legalDisclosure",
    "negativeFeedbackRemoval",
    "confirmOrderDetails",
    "confirmServiceDetails",
    "amazonMotors",
    "digitalAccessKey",
    "unexpectedProblem",
    "warranty",
    "attributes",
)
_ERROR_CODES = {
    400: ("InvalidInput", "Invalid Input"),
    403: ("Unauthorized", "Access to requested resource is denied."),
    404: ("NotFound", "The requested resource was not found."),
    429: ("QuotaExceeded", "You exceeded your quota for the requested resource."),
    500: ("InternalFailure", "We encountered an internal error. Please try again."),
    503: ("ServiceUnavailable", "Service temporarily unavailable. Please try again."),
}
_ROUTES = [
    (re.compile(r"^/orders/v0/orders/(?P<order>[^/]+)$"), "GET", "getOrder"),
    (re.compile(r"^/orders/v0/orders/(?P<order>[^/]+)/orderItems$"), "GET", "getOrderItems"),
    (re.compile(r"^/messaging/v1/orders/(?P<order>[^/]+)$"), "GET", "getMessagingActionsForOrder"),
    (re.compile(r"^/messaging/v1/orders/(?P<order>[^/]+)/attributes$"), "GET", "getAttributes"),
    (re.compile(r"^/messaging/v1/orders/(?P<order>[^/]+)/messages/(?P<type>\w+)$"), "POST", "sendMessage"),
]


@dataclass
class FakeOrder:
    order_id: str
    marketplace_id: str = "ATVPDKIKX0DER"
    status: str = "Unshipped"
    fulfillment_channel: str = "MFN"
    purchase_date: str = "2026-03-02T09:15:00Z"
    latest_ship_date: str = "2026-03-04T23:59:59Z"
    latest_delivery_date: str = "2026-03-09T23:59:59Z"
    total: str = "24.99"
    currency: str = "USD"
    locale: str = "en-US"
    actions: tuple[str, ...] = SANDBOX_ACTIONS
    items: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "ASIN": "B00000J0S9",
                "OrderItemId": "68828574383266",
                "SellerSKU": "SKU-MUG-01",
                "Title": "Ceramic Coffee Mug, 350 ml",
                "QuantityOrdered": 1,
                "QuantityShipped": 0,
            }
        ]
    )

    def payload(self) -> dict[str, Any]:
        return {
            "AmazonOrderId": self.order_id,
            "PurchaseDate": self.purchase_date,
            "LastUpdateDate": self.purchase_date,
            "OrderStatus": self.status,
            "FulfillmentChannel": self.fulfillment_channel,
            "OrderTotal": {"CurrencyCode": self.currency, "Amount": self.total},
            "MarketplaceId": self.marketplace_id,
            "LatestShipDate": self.latest_ship_date,
            "LatestDeliveryDate": self.latest_delivery_date,
            "OrderType": "StandardOrder",
        }


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    host: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class _Failure:
    status: int
    remaining: int
    retry_after: str | None


class FakeSpApi:
    """State of the fake: orders, issued tokens, queued failures and the request log."""

    def __init__(
        self,
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        refresh_token: str = "fake-refresh-token",
        expires_in: int = 3600,
        rate_limit: str | None = None,
        items_page_size: int = 100,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.expires_in = expires_in
        self.rate_limit = rate_limit  # sent as x-amzn-RateLimit-Limit when set
        self.items_page_size = items_page_size  # getOrderItems pages with NextToken beyond this
        self.orders: dict[str, FakeOrder] = {SANDBOX_ORDER_ID: FakeOrder(SANDBOX_ORDER_ID)}
        self.requests: list[RecordedRequest] = []
        self.sent: list[tuple[str, str, dict[str, Any]]] = []  # (order id, message type, body)
        self.issued_tokens: list[str] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()

    # -- configuration -----------------------------------------------------------------------------

    def add_order(self, order_id: str, **fields: Any) -> FakeOrder:
        order = FakeOrder(order_id, **fields)
        self.orders[order_id] = order
        return order

    def fail_next(self, status: int, times: int = 1, *, retry_after: str | None = None) -> None:
        """The next `times` SP-API calls (not LWA) answer `status`, then normal service resumes."""
        self._failures.append(_Failure(status, times, retry_after))

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith(path_prefix) and (method is None or r.method == method)]

    # -- HTTP --------------------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        """An `httpx.MockTransport` handler; routes on the path only, so any host reaches it."""
        body = request.read()
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    host=request.url.host,
                    path=request.url.path,
                    query=parse_qs(request.url.query.decode()),
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                )
            )
            if request.url.path == "/auth/o2/token" and request.method == "POST":
                return self._token(body)
            if request.url.path == "/" and request.method == "GET":
                return self._index()
            return self._sp_api(request, body)

    def _token(self, body: bytes) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return _json(400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return _json(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        if form.get("refresh_token") != self.refresh_token:
            return _json(
                400,
                {"error": "invalid_grant", "error_description": "The request has an invalid grant parameter"},
            )
        token = "Atza|" + secrets.token_urlsafe(16)
        self.issued_tokens.append(token)
        return _json(
            200,
            {
                "access_token": token,
                "refresh_token": self.refresh_token,
                "token_type": "bearer",
                "expires_in": self.expires_in,
            },
        )

    def _index(self) -> httpx.Response:
        """What a browser sees at the root: how to get a token and which orders exist."""
        return _json(
            200,
            {
                "service": "ReplyDesk fake SP-API",
                "token_url": "/auth/o2/token",
                "client_id": self.client_id,
                "orders": sorted(self.orders),
                "routes": [f"{method} {pattern.pattern}" for pattern, method, _ in _ROUTES],
                "requests_seen": len(self.requests),
            },
        )

    def _sp_api(self, request: httpx.Request, body: bytes) -> httpx.Response:
        token = request.headers.get("x-amz-access-token")
        if not self.issued_tokens or token != self.issued_tokens[-1]:
            return self._error(401, "The access token you provided is revoked, malformed or invalid.")
        if self._failures:
            failure = self._failures[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.pop(0)
            headers = {"retry-after": failure.retry_after} if failure.retry_after else {}
            return self._error(failure.status, headers=headers)
        for pattern, method, operation in _ROUTES:
            match = pattern.match(request.url.path)
            if match and request.method == method:
                return self._operation(operation, match.groupdict(), request, body)
        return self._error(404, f"No route for {request.method} {request.url.path}")

    def _operation(self, operation: str, parts: dict[str, str], request: httpx.Request, body: bytes) -> httpx.Response:
        order_id = parts["order"]
        if order_id == SANDBOX_INVALID_ORDER_ID:
            return self._error(400)
        if operation.startswith("getOrder"):
            marketplace_id = None  # Orders v0 getOrder/getOrderItems take no marketplaceIds
        else:
            ids = request.url.params.get_list("marketplaceIds")
            if len(ids) != 1:
                return self._error(400, "marketplaceIds must hold exactly one marketplace id")
            marketplace_id = ids[0]
        order = self.orders.get(order_id)
        if order is None or (marketplace_id and marketplace_id != order.marketplace_id):
            return self._error(404, f"Order {order_id} not found")
        if operation == "getOrder":
            return self._ok({"payload": order.payload()})
        if operation == "getOrderItems":
            start = int(request.url.params.get("NextToken") or 0)
            end = start + self.items_page_size
            page: dict[str, Any] = {"AmazonOrderId": order_id, "OrderItems": order.items[start:end]}
            if end < len(order.items):
                page["NextToken"] = str(end)
            return self._ok({"payload": page})
        base = f"/messaging/v1/orders/{order_id}"
        query = f"?marketplaceIds={marketplace_id}"
        if operation == "getMessagingActionsForOrder":
            actions = [
                {"href": f"{base}/{'attributes' if a == 'attributes' else 'messages/' + a}{query}", "name": a}
                for a in order.actions
            ]
            return self._ok({"_links": {"actions": actions, "self": {"href": base + query}}})
        if operation == "getAttributes":
            return self._ok({"buyer": {"locale": order.locale}})
        message_type = parts["type"]
        if message_type not in order.actions:
            return self._error(400, f"{message_type} is not available for this order")
        self.sent.append((order_id, message_type, json.loads(body or b"{}")))
        return self._ok({}, status=201)

    def _ok(self, payload: dict[str, Any], status: int = 200) -> httpx.Response:
        headers = {"x-amzn-RateLimit-Limit": self.rate_limit} if self.rate_limit else {}
        return _json(status, payload, headers)

    def _error(self, status: int, details: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
        code, message = _ERROR_CODES.get(status, ("Error", "Error"))
        return _json(status, {"errors": [{"code": code, "message": message, "details": details}]}, headers)


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    response_headers = {"x-amzn-RequestId": secrets.token_hex(8), **(headers or {})}
    return httpx.Response(status, json=payload, headers=response_headers)


# -- loopback HTTP server ------------------------------------------------------------------------


def _http_handler(fake: FakeSpApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _relay(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = httpx.Request(
                self.command,
                f"http://{self.headers.get('host', 'localhost')}{self.path}",
                headers=dict(self.headers.items()),
                content=self.rfile.read(length) if length else b"",
            )
            response = fake.handler(request)
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(response.content)))
            self.end_headers()
            self.wfile.write(response.content)

        do_GET = do_POST = _relay

        def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
            pass

    return Handler


@contextmanager
def serve(fake: FakeSpApi, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `fake` on a loopback port in a background thread; yields the base URL."""
    server = ThreadingHTTPServer((host, port), _http_handler(fake))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-sp-api", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake SP-API and Login with Amazon on a loopback port.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    fake = FakeSpApi()
    with serve(fake, args.host, args.port) as url:
        print(
            f"Fake SP-API on {url} (LWA token URL {url}/auth/o2/token); client id {fake.client_id}, "
            f"client secret {fake.client_secret}, refresh token {fake.refresh_token}. Ctrl-C stops it."
        )
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()

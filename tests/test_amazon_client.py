"""SpApiClient and LWA through the real httpx.Client against the fake SP-API (MockTransport or a socket)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest

from engine.amazon import (
    MessageAttachment,
    SpApiClient,
    endpoint_for,
    locale_language,
    order_context_or_none,
    region_for_marketplace,
)
from engine.amazon.fake_server import SANDBOX_ACTIONS, SANDBOX_INVALID_ORDER_ID, SANDBOX_ORDER_ID, FakeSpApi, serve
from engine.drafting.protocols import OrderContext
from engine.errors import AmazonApiError, ComplianceBlocked, ConfigError, InputError

SECRET = "fake-client-secret"
REFRESH = "fake-refresh-token"
FBA_ORDER = "302-5550001-7654321"
SEED = 7


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> FakeSpApi:
    return FakeSpApi(client_secret=SECRET, refresh_token=REFRESH)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def http(fake: FakeSpApi) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.MockTransport(fake.handler)) as client:
        yield client


def make_client(
    http: httpx.Client,
    clock: FakeClock,
    *,
    region: str = "na",
    sandbox: bool = False,
    secret: str = SECRET,
    refresh: str = REFRESH,
) -> SpApiClient:
    return SpApiClient.from_credentials(
        "fake-client-id",
        secret,
        refresh,
        region=region,
        sandbox=sandbox,
        http_client=http,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(SEED),
    )


def sp_requests(fake: FakeSpApi, method: str | None = None) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.path != "/auth/o2/token" and method in (None, r.method)]


def token_requests(fake: FakeSpApi) -> int:
    return len(fake.requests_to("/auth/o2/token", "POST"))


# -- Login with Amazon ---------------------------------------------------------------------------


def test_access_token_is_cached_until_a_minute_before_expiry(
    fake: FakeSpApi, http: httpx.Client, clock: FakeClock
) -> None:
    client = make_client(http, clock)
    client.get_buyer_locale(SANDBOX_ORDER_ID, "US")
    clock.now = 3539.0
    client.get_buyer_locale(SANDBOX_ORDER_ID, "US")
    assert token_requests(fake) == 1
    clock.now = 3541.0
    client.get_buyer_locale(SANDBOX_ORDER_ID, "US")
    assert token_requests(fake) == 2
    first, second = fake.issued_tokens
    assert first != second
    assert fake.requests[-1].headers["x-amz-access-token"] == second
    form = fake.requests_to("/auth/o2/token")[0].body.decode()
    assert "grant_type=refresh_token" in form and "client_id=fake-client-id" in form


def test_short_lived_token_is_still_reused_for_half_its_life(clock: FakeClock) -> None:
    fake = FakeSpApi(client_secret=SECRET, refresh_token=REFRESH, expires_in=30)
    with httpx.Client(transport=httpx.MockTransport(fake.handler)) as short_http:
        client = make_client(short_http, clock)
        client.get_buyer_locale(SANDBOX_ORDER_ID, "US")
        clock.now = 14.0
        client.get_buyer_locale(SANDBOX_ORDER_ID, "US")
        assert len(fake.issued_tokens) == 1
        clock.now = 16.0
        client.get_buyer_locale(SANDBOX_ORDER_ID, "US")
        assert len(fake.issued_tokens) == 2


@pytest.mark.parametrize(
    ("secret", "refresh", "status", "hint"),
    [
        ("wrong-secret-9f2c", REFRESH, 401, "client id and client secret"),
        (SECRET, "Atzr|wrong-refresh-77ab", 400, "refresh token"),
    ],
)
def test_rejected_lwa_credentials_name_the_culprit_but_not_the_secret(
    fake: FakeSpApi, http: httpx.Client, clock: FakeClock, secret: str, refresh: str, status: int, hint: str
) -> None:
    client = make_client(http, clock, secret=secret, refresh=refresh)
    with pytest.raises(AmazonApiError) as caught:
        client.get_order(SANDBOX_ORDER_ID, "US")
    message = str(caught.value)
    assert caught.value.status == status
    assert hint in message
    assert secret not in message and refresh not in message
    assert sp_requests(fake) == []


def test_stale_token_is_refreshed_once_and_the_call_retried(
    fake: FakeSpApi, http: httpx.Client, clock: FakeClock
) -> None:
    client = make_client(http, clock)
    client.get_buyer_locale(SANDBOX_ORDER_ID, "US")
    fake.issued_tokens.append("Atza|revoked-elsewhere")  # the cached token no longer matches
    assert client.get_buyer_locale(SANDBOX_ORDER_ID, "US") == "en-US"
    assert token_requests(fake) == 2
    assert len(sp_requests(fake)) == 3


@pytest.mark.parametrize(("client_id", "secret", "refresh"), [("", SECRET, REFRESH), ("id", SECRET, "")])
def test_missing_credentials_are_a_config_error(client_id: str, secret: str, refresh: str) -> None:
    with pytest.raises(ConfigError, match="missing"):
        SpApiClient.from_credentials(client_id, secret, refresh, region="na")


# -- hosts and regions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "sandbox", "url"),
    [
        ("na", False, "https://sellingpartnerapi-na.amazon.com"),
        ("eu", False, "https://sellingpartnerapi-eu.amazon.com"),
        ("fe", False, "https://sellingpartnerapi-fe.amazon.com"),
        ("na", True, "https://sandbox.sellingpartnerapi-na.amazon.com"),
        ("EU", True, "https://sandbox.sellingpartnerapi-eu.amazon.com"),
        ("fe", True, "https://sandbox.sellingpartnerapi-fe.amazon.com"),
    ],
)
def test_endpoint_per_region_and_sandbox(region: str, sandbox: bool, url: str) -> None:
    assert endpoint_for(region, sandbox=sandbox) == url


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ConfigError, match="na, eu, fe"):
        endpoint_for("us-east-1")


@pytest.mark.parametrize(
    ("marketplace", "region"),
    [
        ("US", "na"), ("CA", "na"), ("MX", "na"), ("BR", "na"),
        ("UK", "eu"), ("DE", "eu"), ("FR", "eu"), ("IT", "eu"), ("ES", "eu"), ("NL", "eu"),
        ("SE", "eu"), ("PL", "eu"), ("TR", "eu"), ("AE", "eu"),
        ("JP", "fe"),
        ("A1PA6795UKMFR9", "eu"), ("de", "eu"),
    ],
)  # fmt: skip
def test_marketplace_region(marketplace: str, region: str) -> None:
    assert region_for_marketplace(marketplace) == region


def test_requests_go_to_the_sandbox_host_with_marketplace_and_user_agent(
    fake: FakeSpApi, http: httpx.Client, clock: FakeClock
) -> None:
    fake.add_order(SANDBOX_ORDER_ID, marketplace_id="A1PA6795UKMFR9")
    client = make_client(http, clock, region="eu", sandbox=True)
    client.get_messaging_actions(SANDBOX_ORDER_ID, "DE")
    request = fake.requests[-1]
    assert request.host == "sandbox.sellingpartnerapi-eu.amazon.com"
    assert request.path == f"/messaging/v1/orders/{SANDBOX_ORDER_ID}"
    assert request.query == {"marketplaceIds": ["A1PA6795UKMFR9"]}
    assert request.headers["user-agent"].startswith("ReplyDesk/")
    assert request.headers["x-amz-access-token"] == fake.issued_tokens[-1]
    assert fake.requests[0].host == "api.amazon.com"


def test_marketplace_from_another_region_is_refused_before_any_request(
    fake: FakeSpApi, http: httpx.Client, clock: FakeClock
) -> None:
    client = make_client(http, clock, region="eu")
    with pytest.raises(ConfigError, match="region na"):
        client.get_order(SANDBOX_ORDER_ID, "US")
    assert fake.requests == []


# -- errors and retries ----------------------------------------------------------------------------


def test_invalid_input_carries_amazons_message_and_is_not_retried(
    fake: FakeSpApi, http: httpx.Client, clock: FakeClock
) -> None:
    client = make_client(http, clock)
    with pytest.raises(AmazonApiError) as caught:
        client.get_messaging_actions(SANDBOX_INVALID_ORDER_ID, "US")
    assert caught.value.status == 400
    assert "InvalidInput: Invalid Input" in str(caught.value)
    assert SANDBOX_INVALID_ORDER_ID in str(caught.value)
    assert len(sp_requests(fake)) == 1
    assert clock.sleeps == []


def test_429_waits_as_long_as_retry_after_says(fake: FakeSpApi, http: httpx.Client, clock: FakeClock) -> None:
    fake.fail_next(429, 2, retry_after="3")
    client = make_client(http, clock)
    assert client.get_buyer_locale(SANDBOX_ORDER_ID, "US") == "en-US"
    assert clock.sleeps == [3.0, 3.0]
    assert len(sp_requests(fake)) == 3


def test_500_is_retried_with_seeded_full_jitter(fake: FakeSpApi, http: httpx.Client, clock: FakeClock) -> None:
    fake.fail_next(500, 2)
    client = make_client(http, clock)
    assert client.get_order(SANDBOX_ORDER_ID, "US").status == "Unshipped"
    rng = random.Random(SEED)
    assert clock.sleeps == [rng.uniform(0, 1.0), rng.uniform(0, 2.0)]
    assert len(sp_requests(fake)) == 3


def test_retries_stop_after_five_attempts(fake: FakeSpApi, http: httpx.Client, clock: FakeClock) -> None:
    fake.fail_next(503, 50)
    client = make_client(http, clock)
    with pytest.raises(AmazonApiError) as caught:
        client.get_messaging_actions(SANDBOX_ORDER_ID, "US")
    assert caught.value.status == 503
    assert "5 times" in str(caught.value)
    assert len(sp_requests(fake)) == 5
    assert len(clock.sleeps) == 4


def test_403_points_at_the_buyer_communication_role(fake: FakeSpApi, http: httpx.Client, clock: FakeClock) -> None:
    fake.fail_next(403)
    client = make_client(http, clock)
    with pytest.raises(AmazonApiError, match="Buyer Communication role") as caught:
        client.get_buyer_locale(SANDBOX_ORDER_ID, "US")
    assert caught.value.status == 403
    assert len(sp_requests(fake)) == 1


def test_rate_limit_header_from_amazon_paces_later_calls(fake: FakeSpApi, http: httpx.Client, clock: FakeClock) -> None:
    fake.rate_limit = "2.0"
    client = make_client(http, clock)
    for _ in range(6):
        client.get_buyer_locale(SANDBOX_ORDER_ID, "US")
    assert clock.sleeps == [0.5]  # burst of 5 free, then 1/2.0 s instead of the default 1 s


# -- operations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("channel", "expected"), [("AFN", "AFN"), ("MFN", "MFN"), ("SellerFulfilled", "MFN")])
def test_order_context_mapping(
    fake: FakeSpApi, http: httpx.Client, clock: FakeClock, channel: str, expected: str
) -> None:
    fake.add_order(
        FBA_ORDER,
        marketplace_id="A1PA6795UKMFR9",
        status="Shipped",
        fulfillment_channel=channel,
        latest_ship_date="2026-03-03T22:59:59Z",
        latest_delivery_date="2026-03-06T22:59:59.000Z",
        total="49.90",
        currency="EUR",
    )
    client = make_client(http, clock, region="eu")
    context = client.get_order_context(FBA_ORDER, "DE")
    assert context == OrderContext(
        order_id=FBA_ORDER,
        status="Shipped",
        fulfillment_channel=expected,  # type: ignore[arg-type]
        ship_date="2026-03-03",
        delivery_date="2026-03-06",
        order_total="49.90",
        currency="EUR",
    )
    assert sp_requests(fake) == [f"GET /orders/v0/orders/{FBA_ORDER}"]


def test_order_and_items(fake: FakeSpApi, http: httpx.Client, clock: FakeClock) -> None:
    client = make_client(http, clock)
    order = client.get_order(SANDBOX_ORDER_ID, "ATVPDKIKX0DER")
    assert (order.status, order.fulfillment_channel, order.currency) == ("Unshipped", "MFN", "USD")
    assert str(order.order_total) == "24.99"
    assert order.purchase_date is not None and order.purchase_date.isoformat() == "2026-03-02T09:15:00+00:00"
    items = client.get_order_items(SANDBOX_ORDER_ID, "US")
    assert [(i.asin, i.seller_sku, i.quantity) for i in items] == [("B00000J0S9", "SKU-MUG-01", 1)]
    assert items[0].title == "Ceramic Coffee Mug, 350 ml"


def test_order_items_follow_next_token(clock: FakeClock) -> None:
    fake = FakeSpApi(client_secret=SECRET, refresh_token=REFRESH, items_page_size=2)
    items = [
        {"ASIN": f"B0000000{n}", "SellerSKU": f"SKU-{n}", "Title": f"Item {n}", "QuantityOrdered": n} for n in range(5)
    ]
    fake.add_order(FBA_ORDER, items=items)
    with httpx.Client(transport=httpx.MockTransport(fake.handler)) as paged_http:
        found = make_client(paged_http, clock).get_order_items(FBA_ORDER, "US")
    assert [i.seller_sku for i in found] == [f"SKU-{n}" for n in range(5)]
    assert [r.query for r in fake.requests_to("/orders")] == [{}, {"NextToken": ["2"]}, {"NextToken": ["4"]}]


def test_messaging_actions_are_the_hal_link_names(fake: FakeSpApi, http: httpx.Client, clock: FakeClock) -> None:
    fake.add_order("111-2223334-4445556", actions=("confirmDeliveryDetails", "unexpectedProblem"))
    client = make_client(http, clock)
    assert client.get_messaging_actions(SANDBOX_ORDER_ID, "US") == list(SANDBOX_ACTIONS)
    assert client.get_messaging_actions("111-2223334-4445556", "US") == [
        "confirmDeliveryDetails",
        "unexpectedProblem",
    ]


@pytest.mark.parametrize(("locale", "language"), [("de-DE", "de"), ("ja-JP", "ja"), ("en-GB", "en")])
def test_buyer_locale_decides_the_language(
    fake: FakeSpApi, http: httpx.Client, clock: FakeClock, locale: str, language: str
) -> None:
    fake.add_order(FBA_ORDER, locale=locale)
    client = make_client(http, clock)
    found = client.get_buyer_locale(FBA_ORDER, "US")
    assert found == locale
    assert locale_language(found) == language
    assert fake.requests[-1].path == f"/messaging/v1/orders/{FBA_ORDER}/attributes"


@pytest.mark.parametrize(("locale", "language"), [("zh_CN", "zh"), ("PT-br", "pt"), ("es", "es"), ("", None)])
def test_locale_language(locale: str, language: str | None) -> None:
    assert locale_language(locale) == language


def test_send_message_posts_after_checking_the_allowed_actions(
    fake: FakeSpApi, http: httpx.Client, clock: FakeClock
) -> None:
    client = make_client(http, clock)
    client.send_message(SANDBOX_ORDER_ID, "US", "confirmDeliveryDetails", "Please confirm the gate code.")
    assert sp_requests(fake) == [
        f"GET /messaging/v1/orders/{SANDBOX_ORDER_ID}",
        f"POST /messaging/v1/orders/{SANDBOX_ORDER_ID}/messages/confirmDeliveryDetails",
    ]
    assert fake.requests[-1].query == {"marketplaceIds": ["ATVPDKIKX0DER"]}
    assert fake.sent == [(SANDBOX_ORDER_ID, "confirmDeliveryDetails", {"text": "Please confirm the gate code."})]


def test_send_message_with_attachments(fake: FakeSpApi, http: httpx.Client, clock: FakeClock) -> None:
    client = make_client(http, clock)
    proof = MessageAttachment("4e936e26-7b72-4b84-af27-e6baee1d546d", "proof.png")
    client.send_message(
        SANDBOX_ORDER_ID, "US", "confirmCustomizationDetails", "Is this spelling right?", attachments=[proof]
    )
    assert fake.sent[0][2]["attachments"] == [
        {"uploadDestinationId": "4e936e26-7b72-4b84-af27-e6baee1d546d", "fileName": "proof.png"}
    ]


@pytest.mark.parametrize(
    ("message_type", "text", "error"),
    [
        ("confirmCustomizationDetails", "x" * 801, InputError),
        ("unexpectedProblem", "x" * 2001, InputError),
        ("digitalAccessKey", "x" * 401, InputError),
        ("confirmDeliveryDetails", "   ", InputError),
        ("warranty", "Your warranty", InputError),
        ("negativeFeedbackRemoval", "Please remove", InputError),
        ("unexpectedProblem", "Sorry, <b>delayed</b>", ComplianceBlocked),
        ("unexpectedProblem", "Sorry&nbsp;for the delay", ComplianceBlocked),
        ("confirmOrderDetails", "Write to shop.help@example.com", ComplianceBlocked),
        # the full compliance gate, as for every e-mail reply
        ("confirmDeliveryDetails", "It ships today. Call us on +1 415 555 0134.", ComplianceBlocked),
        ("unexpectedProblem", "Sorry for the delay! Use code SAVE10 for 10% off your next order.", ComplianceBlocked),
        ("confirmOrderDetails", "Please leave us a 5-star review once it arrives.", ComplianceBlocked),
        ("confirmServiceDetails", "Pay the installation by PayPal to save the fee.", ComplianceBlocked),
    ],
)
def test_send_message_is_refused_before_any_request(
    fake: FakeSpApi, http: httpx.Client, clock: FakeClock, message_type: str, text: str, error: type[Exception]
) -> None:
    client = make_client(http, clock)
    with pytest.raises(error):
        client.send_message(SANDBOX_ORDER_ID, "US", message_type, text)
    assert fake.requests_to("/messaging", "POST") == []
    assert fake.requests == []


@pytest.mark.parametrize(
    ("message_type", "limit"),
    [("confirmCustomizationDetails", 800), ("unexpectedProblem", 2000), ("digitalAccessKey", 400)],
)
def test_text_at_the_limit_is_sent(
    fake: FakeSpApi, http: httpx.Client, clock: FakeClock, message_type: str, limit: int
) -> None:
    make_client(http, clock).send_message(SANDBOX_ORDER_ID, "US", message_type, "x" * limit)
    assert len(fake.requests_to("/messaging", "POST")) == 1


def test_send_message_type_not_offered_for_the_order(fake: FakeSpApi, http: httpx.Client, clock: FakeClock) -> None:
    fake.add_order(FBA_ORDER, actions=("confirmDeliveryDetails",))
    client = make_client(http, clock)
    with pytest.raises(AmazonApiError, match="does not allow a unexpectedProblem"):
        client.send_message(FBA_ORDER, "US", "unexpectedProblem", "Your parcel is delayed.")
    assert fake.requests_to("/messaging", "POST") == []


# -- degraded mode -----------------------------------------------------------------------------------


def test_order_context_or_none_without_a_client() -> None:
    assert order_context_or_none(None, SANDBOX_ORDER_ID, "US") == (None, "not connected")


def test_order_context_or_none_reports_the_reason(http: httpx.Client, clock: FakeClock) -> None:
    client = make_client(http, clock)
    context, reason = order_context_or_none(client, SANDBOX_ORDER_ID, "US")
    assert context is not None and context.order_id == SANDBOX_ORDER_ID and reason == "ok"
    context, reason = order_context_or_none(client, SANDBOX_INVALID_ORDER_ID, "US")
    assert context is None and "Invalid Input" in reason
    assert order_context_or_none(client, None, "US") == (None, "no order id")
    context, reason = order_context_or_none(client, SANDBOX_ORDER_ID, "JP")
    assert context is None and "region fe" in reason


# -- over a real socket --------------------------------------------------------------------------------


def test_client_against_the_fake_served_on_a_loopback_port(fake: FakeSpApi) -> None:
    with serve(fake) as base_url, httpx.Client(trust_env=False, timeout=5.0) as http:
        client = SpApiClient.from_credentials(
            "fake-client-id",
            SECRET,
            REFRESH,
            region="na",
            http_client=http,
            endpoint=base_url,
            token_url=f"{base_url}/auth/o2/token",
        )
        context = client.get_order_context(SANDBOX_ORDER_ID, "US")
        assert client.get_buyer_locale(SANDBOX_ORDER_ID, "US") == "en-US"
        with pytest.raises(AmazonApiError, match="Invalid Input"):
            client.get_order(SANDBOX_INVALID_ORDER_ID, "US")
    assert context.order_total == "24.99" and context.fulfillment_channel == "MFN"
    assert [r.path for r in fake.requests][:2] == ["/auth/o2/token", f"/orders/v0/orders/{SANDBOX_ORDER_ID}"]
    assert fake.requests[1].host == "127.0.0.1"


def test_unreachable_network_is_retried_then_reported(clock: FakeClock) -> None:
    fake = FakeSpApi(client_secret=SECRET, refresh_token=REFRESH)

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/messaging"):
            raise httpx.ConnectError("connection refused", request=request)
        return fake.handler(request)

    with httpx.Client(transport=httpx.MockTransport(flaky)) as flaky_http:
        client = make_client(flaky_http, clock)
        with pytest.raises(AmazonApiError, match="Could not reach the SP-API"):
            client.get_buyer_locale(SANDBOX_ORDER_ID, "US")
    assert len(clock.sleeps) == 4

"""Typed SP-API results and the pure mapping from Amazon's JSON to them (no buyer data is kept)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from engine.drafting.protocols import OrderContext

FulfillmentChannel = Literal["AFN", "MFN"]

# Proactive message types that carry text, with the API's `maxLength` for that text
# (models/messaging-api-model/messaging.json). Attachment-only types (legalDisclosure, warranty,
# invoice, amazonMotors) need the Uploads API and are not sent from ReplyDesk.
TEXT_LIMITS: dict[str, int] = {
    "confirmCustomizationDetails": 800,
    "confirmDeliveryDetails": 2000,
    "confirmOrderDetails": 2000,
    "confirmServiceDetails": 2000,
    "unexpectedProblem": 2000,
    "digitalAccessKey": 400,
}
ATTACHMENT_TYPES = frozenset({"confirmCustomizationDetails", "digitalAccessKey"})
MAX_ATTACHMENTS = 5


@dataclass(frozen=True)
class OrderInfo:
    """Order facts from Orders v0 `getOrder`; deliberately without buyer name, e-mail or address."""

    order_id: str
    status: str | None
    purchase_date: datetime | None
    latest_ship_date: datetime | None
    earliest_delivery_date: datetime | None
    latest_delivery_date: datetime | None
    fulfillment_channel: FulfillmentChannel | None  # AFN = fulfilled by Amazon (FBA)
    order_total: Decimal | None
    currency: str | None  # ISO 4217
    marketplace_id: str | None


@dataclass(frozen=True)
class OrderItem:
    asin: str | None
    title: str | None
    quantity: int
    seller_sku: str | None
    order_item_id: str | None = None


@dataclass(frozen=True)
class MessageAttachment:
    """A file already uploaded through the Uploads API."""

    upload_destination_id: str
    file_name: str


def parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_fulfillment_channel(value: Any) -> FulfillmentChannel | None:
    # The model's own example says "SellerFulfilled"; live answers say "MFN"/"AFN".
    if value in ("AFN", "AmazonFulfilled"):
        return "AFN"
    if value in ("MFN", "SellerFulfilled"):
        return "MFN"
    return None


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def order_info_from_payload(payload: dict[str, Any], order_id: str) -> OrderInfo:
    total = payload.get("OrderTotal") or {}
    return OrderInfo(
        order_id=str(payload.get("AmazonOrderId") or order_id),
        status=payload.get("OrderStatus"),
        purchase_date=parse_timestamp(payload.get("PurchaseDate")),
        latest_ship_date=parse_timestamp(payload.get("LatestShipDate")),
        earliest_delivery_date=parse_timestamp(payload.get("EarliestDeliveryDate")),
        latest_delivery_date=parse_timestamp(payload.get("LatestDeliveryDate")),
        fulfillment_channel=parse_fulfillment_channel(payload.get("FulfillmentChannel")),
        order_total=_decimal(total.get("Amount")),
        currency=total.get("CurrencyCode"),
        marketplace_id=payload.get("MarketplaceId"),
    )


def order_items_from_payload(payload: dict[str, Any]) -> list[OrderItem]:
    items = []
    for raw in payload.get("OrderItems") or []:
        try:
            quantity = int(raw.get("QuantityOrdered") or 0)
        except (TypeError, ValueError):
            quantity = 0
        items.append(
            OrderItem(
                asin=raw.get("ASIN"),
                title=raw.get("Title"),
                quantity=quantity,
                seller_sku=raw.get("SellerSKU"),
                order_item_id=raw.get("OrderItemId"),
            )
        )
    return items


def order_context_from_info(info: OrderInfo) -> OrderContext:
    """Dates become ISO dates (UTC day), the total a plain decimal string; carrier data is not in getOrder."""
    return OrderContext(
        order_id=info.order_id,
        status=info.status,
        fulfillment_channel=info.fulfillment_channel,
        ship_date=info.latest_ship_date.date().isoformat() if info.latest_ship_date else None,
        delivery_date=info.latest_delivery_date.date().isoformat() if info.latest_delivery_date else None,
        order_total=str(info.order_total) if info.order_total is not None else None,
        currency=info.currency,
    )


def action_names_from_payload(body: dict[str, Any]) -> list[str]:
    """Names from the HAL `_links.actions` list; a link without a name is named by its path's last part."""
    names: list[str] = []
    for link in (body.get("_links") or {}).get("actions") or []:
        name = link.get("name") or str(link.get("href", "")).split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        if name and name not in names:
            names.append(name)
    return names


def locale_language(locale: str | None) -> str | None:
    """ISO 639-1 language of a locale tag: "de-DE" -> "de", "zh_CN" -> "zh"; None for an empty tag."""
    if not locale:
        return None
    language = locale.replace("_", "-").split("-", 1)[0].strip().lower()
    return language or None

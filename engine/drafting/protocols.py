"""What a drafter receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from engine.nlp.protocols import RetrievedAnswer


@dataclass(frozen=True)
class OrderContext:
    """What is known about the order; every field optional (SP-API may be not connected)."""

    order_id: str | None = None
    status: str | None = None
    fulfillment_channel: Literal["AFN", "MFN"] | None = None  # AFN = FBA: Amazon handles delivery
    carrier: str | None = None
    tracking_number: str | None = None
    ship_date: str | None = None  # ISO date
    delivery_date: str | None = None  # ISO date (latest estimated delivery)
    order_total: str | None = None  # decimal string, e.g. "24.99"
    currency: str | None = None  # ISO 4217


@dataclass(frozen=True)
class DraftRequest:
    text: str  # the buyer's message, as data
    language: str  # reply language (ISO 639-1)
    intent: str  # taxonomy intent id
    marketplace: str | None = None  # taxonomy marketplace code ("DE")
    buyer_name: str | None = None
    product_title: str | None = None
    asin: str | None = None
    order: OrderContext = field(default_factory=OrderContext)
    retrieved: tuple[RetrievedAnswer, ...] = ()
    store_name: str | None = None
    thread: tuple[tuple[str, str], ...] = ()  # earlier (direction, text) pairs, oldest first


@dataclass(frozen=True)
class DraftResult:
    text: str  # empty when action is "no_response_needed"
    action: Literal["reply", "no_response_needed"]
    drafter: str  # "default", "llm", "fake"
    model: str | None = None
    prompt_version: str | None = None
    template_id: str | None = None
    source_ids: tuple[int, ...] = ()  # knowledge item ids the draft drew on
    note: str | None = None  # e.g. why the LLM drafter fell back


class Drafter(Protocol):
    name: str

    def draft(self, request: DraftRequest) -> DraftResult: ...

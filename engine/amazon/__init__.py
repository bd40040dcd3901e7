"""Selling Partner API: order context, buyer locale and the few proactive message types.

There is no SP-API for reading or answering buyer messages; those come and go by e-mail relay.

    SpApiClient.from_credentials(...)      one seller, one region
    ├── LwaTokenProvider                    Login with Amazon, cached access token
    ├── RateLimiter                         token bucket per operation
    └── AmazonApiError / ConfigError / InputError / ComplianceBlocked (engine.errors)
"""

from engine.amazon.client import (
    MARKETPLACE_REGIONS,
    REGIONS,
    SpApiClient,
    check_message_text,
    endpoint_for,
    order_context_or_none,
    region_for_marketplace,
    resolve_marketplace,
)
from engine.amazon.lwa import LWA_TOKEN_URL, AccessTokenSource, LwaCredentials, LwaTokenProvider
from engine.amazon.models import (
    TEXT_LIMITS,
    MessageAttachment,
    OrderInfo,
    OrderItem,
    locale_language,
)
from engine.amazon.ratelimit import RateLimiter, UsagePlan, backoff_delay, parse_retry_after

__all__ = [
    "LWA_TOKEN_URL",
    "MARKETPLACE_REGIONS",
    "REGIONS",
    "TEXT_LIMITS",
    "AccessTokenSource",
    "LwaCredentials",
    "LwaTokenProvider",
    "MessageAttachment",
    "OrderInfo",
    "OrderItem",
    "RateLimiter",
    "SpApiClient",
    "UsagePlan",
    "backoff_delay",
    "check_message_text",
    "endpoint_for",
    "locale_language",
    "order_context_or_none",
    "parse_retry_after",
    "region_for_marketplace",
    "resolve_marketplace",
]

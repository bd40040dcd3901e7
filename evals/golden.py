"""Golden-set export: replies agents approved or edited, turned into draft eval cases without buyer details.

Each case is the buyer's message and the reply as sent (the reference), in the documented data-set format.
Buyer names, e-mail addresses, phone numbers and street addresses are masked (`engine.drafting.pii.mask`); the
real order id is replaced by a synthetic one, which becomes a required fact when the reply quoted it.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.drafting.pii import mask

GOLDEN_STATUSES = ("approved", "edited", "sent")
SYNTHETIC_BUYER = "Alex Sample"
_ORDER_ID = re.compile(r"\b\d{3}-\d{7}-\d{7}\b")
_PLACEHOLDER_NAME = re.compile(r"\[\[\s*BUYER_NAME\s*\]\]", re.IGNORECASE)


def synthetic_order_id(number: int) -> str:
    return f"000-{number % 10_000_000:07d}-0000000"


def scrub(text: str, buyer_name: str | None, order_id: str) -> str:
    """Mask personal data, then put a synthetic name and order id where the real ones were."""
    # Order ids first: digits with dashes would otherwise be masked as phone numbers.
    replaced = _ORDER_ID.sub(order_id, text)
    masked, _ = mask(replaced, {"buyer_name": buyer_name} if buyer_name else None, keep=(order_id,))
    return _PLACEHOLDER_NAME.sub(SYNTHETIC_BUYER, masked)


def golden_cases(session: Session, limit: int | None = None) -> list[dict[str, Any]]:
    """Approved, edited and sent replies with their buyer message, newest first."""
    from engine.db.models import Conversation, Draft, Message

    query = (
        select(Draft, Message, Conversation)
        .join(Message, Draft.message_id == Message.id)
        .join(Conversation, Draft.conversation_id == Conversation.id)
        .where(Draft.status.in_(GOLDEN_STATUSES), Draft.action == "reply")
        .order_by(Draft.id.desc())
    )
    if limit:
        query = query.limit(limit)
    cases = []
    for draft, message, conversation in session.execute(query).all():
        reply = draft.final_text if draft.final_text is not None else draft.text
        if not reply.strip() or not message.body.strip():
            continue
        order_id = synthetic_order_id(draft.id)
        reference = scrub(reply, conversation.buyer_name, order_id)
        case: dict[str, Any] = {
            "id": f"golden-{draft.id}",
            "text": scrub(message.body, conversation.buyer_name, order_id),
            "language": draft.language or message.language,
            "intent": draft.intent or message.intent,
            "marketplace": conversation.marketplace,
            "reference": reference,
            "facts": [order_id] if order_id in reference else [],
            "source": f"golden:{draft.status}",
        }
        if conversation.order_id:
            case["order_id"] = order_id
        if conversation.buyer_name:
            case["buyer_name"] = SYNTHETIC_BUYER
        cases.append(case)
    return cases

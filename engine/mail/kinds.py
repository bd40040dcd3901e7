"""What a mail in the relay mailbox is; only buyer messages enter the reply queue."""

from __future__ import annotations

import enum


class MailKind(enum.StrEnum):
    BUYER_MESSAGE = "buyer_message"
    DELIVERY_FAILURE = "delivery_failure"
    OPTOUT = "optout"
    SENT_COPY = "sent_copy"
    ATOZ_CLAIM = "atoz_claim"
    RETURN_REQUEST = "return_request"
    CANCELLATION_REQUEST = "cancellation_request"
    REFUND_NOTICE = "refund_notice"
    OTHER = "other"

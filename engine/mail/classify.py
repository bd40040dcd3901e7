"""Which kind of mail this is: a pure decision over a few signals, in a fixed order of trust.

1. Seller Central's `X-Space-Notification-Type` header;
2. the sender (mail daemons, DSN reports, Amazon's A-to-z address);
3. notice phrases in the subject and Amazon's own text (never in the buyer's words);
4. a relay alias as sender -> a buyer message; anything else -> other.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.mail import markers
from engine.mail.kinds import MailKind


@dataclass(frozen=True)
class KindSignals:
    notification_type: str | None
    sender_local: str  # lower-case local part of From
    sender_is_relay_alias: bool  # From or Reply-To is a buyer alias on marketplace.amazon.*
    content_type: str  # top-level, lower-case
    report_type: str | None  # multipart/report's report-type parameter
    subject: str
    notice_text: str  # Amazon's text: the whole body for notices, only the frame for relay mails
    relay_markers_found: bool  # the buyer text sat between begin/end markers
    relay_subject: bool  # the subject reads "... inquiry from Amazon customer ..."


def phrase_kind(text: str) -> MailKind | None:
    """The notice kind a subject or a notice body announces, in any language in the tables."""
    folded = text.casefold()
    for kind, phrases in markers.KIND_PHRASES:
        if any(phrase in folded for phrase in phrases):
            return kind
    return None


def classify(signals: KindSignals) -> MailKind:
    if signals.notification_type:
        known = markers.NOTIFICATION_KINDS.get(signals.notification_type.strip().upper())
        if known is not None:
            return known
    if signals.sender_local in markers.BOUNCE_LOCAL_PARTS or (
        signals.content_type == "multipart/report" and (signals.report_type or "").lower() == "delivery-status"
    ):
        return MailKind.DELIVERY_FAILURE
    if signals.sender_local == "atoz-guarantee-no-reply":
        return MailKind.ATOZ_CLAIM
    # A relayed buyer message whose frame is intact is not re-read for notice phrases: the buyer's own
    # subject choices ("Cancel order") would otherwise look like Seller Central notices.
    if signals.sender_is_relay_alias and (signals.relay_markers_found or signals.relay_subject):
        return MailKind.BUYER_MESSAGE
    by_phrase = phrase_kind(signals.subject) or phrase_kind(signals.notice_text)
    if by_phrase is not None:
        return by_phrase
    if signals.sender_is_relay_alias:
        return MailKind.BUYER_MESSAGE
    return MailKind.OTHER

"""Putting an approved reply into the outbox: the exact text, checked, with a Message-ID fixed up front.

The Message-ID is derived from the draft, so every attempt (and a check of the Sent folder after a
crash) refers to the same mail: a reply is never sent twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.compliance import Verdict, blocked_message, gated_subject
from engine.db.models import Conversation, Draft, Mailbox, Message, OutboxItem, OutboxState, Store
from engine.errors import ComplianceBlocked, ConflictError, InputError
from engine.send.smtp import clean_header_value
from engine.services.stats_record import sent_edit_distance

# The gate as the send side calls it: (body, subject=, buyer_language=, reply_language=, allow_list=) -> verdict.
Gate = Callable[..., Verdict]


def reply_message_id(draft_id: int, body: str, sender_address: str) -> str:
    domain = sender_address.rpartition("@")[2] or "replydesk.invalid"
    digest = hashlib.sha256(f"{draft_id}\n{body}".encode()).hexdigest()[:16]
    return f"replydesk.{draft_id}.{digest}@{domain}"


def reply_subject(subject: str) -> str:
    """`Re: ` and the buyer's subject, on one clean line (a buyer's subject can decode to line breaks)."""
    subject = clean_header_value(subject) or "Your message"
    return clean_header_value(subject if subject.lower().startswith("re:") else f"Re: {subject}")


def outgoing_verdict(session: Session, item: OutboxItem, gate: Gate) -> Verdict:
    """The compliance gate on exactly what `item` would send: the one place the send side asks it."""
    conversation = session.get_one(Conversation, item.conversation_id)
    draft = session.get(Draft, item.draft_id)
    store = session.get_one(Store, item.store_id)
    return gate(
        item.body,
        subject=item.subject,
        buyer_language=conversation.language,
        reply_language=draft.language if draft is not None else None,
        allow_list=list(store.allow_list or ()),
    )


def enqueue_reply(session: Session, draft: Draft, body: str, verdict: Verdict) -> OutboxItem:
    """Queue `body` as the reply for `draft`. `verdict` must be the gate's verdict on this exact body."""
    if not verdict.allowed:
        raise ComplianceBlocked(blocked_message(verdict))
    if session.scalar(select(OutboxItem).where(OutboxItem.draft_id == draft.id)) is not None:
        raise ConflictError("This draft is already on its way out. Refresh the conversation.")
    conversation = session.get_one(Conversation, draft.conversation_id)
    store = conversation.store
    mailbox = session.scalar(
        select(Mailbox).where(Mailbox.store_id == store.id, Mailbox.enabled.is_(True)).order_by(Mailbox.id).limit(1)
    )
    sender = store.sender_address or (mailbox.username if mailbox else None)
    if not sender or "@" not in sender:
        raise InputError(
            f"Store {store.name!r} has no sender address. Set the address approved in Seller Central "
            "under Settings → Stores before sending."
        )
    last_buyer_mail = session.scalar(
        select(Message)
        .where(Message.conversation_id == conversation.id, Message.direction == "in", Message.kind == "buyer_message")
        .order_by(Message.received_at.desc())
        .limit(1)
    )
    in_reply_to = last_buyer_mail.message_id if last_buyer_mail else None
    references = [m.message_id for m in conversation.messages if m.message_id][-10:]
    item = OutboxItem(
        draft_id=draft.id,
        conversation_id=conversation.id,
        store_id=store.id,
        mailbox_id=mailbox.id if mailbox else None,
        state=OutboxState.APPROVED,
        message_id=reply_message_id(draft.id, body, sender),
        from_address=sender,
        to_address=conversation.buyer_address,
        subject=gated_subject(
            reply_subject(last_buyer_mail.subject if last_buyer_mail else conversation.subject),
            allow_list=list(store.allow_list or ()),
        ),
        body=body,
        in_reply_to=in_reply_to,
        references=references,
    )
    session.add(item)
    # Recorded now, with the exact text: the statistics would otherwise diff months of drafts on every load.
    draft.edit_distance = sent_edit_distance(draft.text, body)
    session.flush()
    return item

"""The ReplyDesk data model (SQLAlchemy 2 typed ORM). All timestamps are aware UTC.

store ─┬─ mailbox ── sync_run · quarantined_mail
       ├─ conversation ─┬─ message ── raw_mail (by sha256)
       │                ├─ draft ── outbox_item
       │                └─ note
       └─ knowledge_item (or global when store is null)
agent ─ agent_store (which stores an agent may work on)
template · intent_example · audit_event · team_setting
webhook_endpoint ─ webhook_delivery ─ webhook_event (the event outbox) · api_token ─ agent
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db.base import Base, BigId, UTCDateTime, created, intpk, utcnow
from engine.workflow.permissions import Role


class ConversationStatus(enum.StrEnum):
    OPEN = "open"  # a buyer message awaits a reply
    WAITING = "waiting"  # we replied; waiting for the buyer
    HOLD = "hold"  # parked by an agent; the Amazon deadline still runs
    CLOSED = "closed"
    NO_RESPONSE_NEEDED = "no_response_needed"


class DraftStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # sent as drafted
    EDITED = "edited"  # sent after an agent's edit
    REJECTED = "rejected"
    SENT = "sent"
    SUPERSEDED = "superseded"  # a newer draft replaced it (regenerate, new buyer message)


class OutboxState(enum.StrEnum):
    APPROVED = "approved"  # queued, not yet tried
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # retryable until attempts run out, or permanent
    UNKNOWN = "unknown"  # a crash left it undecidable: a human must check the Sent folder
    BLOCKED = "blocked"  # the compliance gate refused the final text at send time


def _enum(cls: type[enum.StrEnum], length: int = 24) -> String:
    # Plain strings in the database: adding a value needs no migration on PostgreSQL.
    return String(length)


agent_store = Table(
    "agent_store",
    Base.metadata,
    Column("agent_id", ForeignKey("agent.id", ondelete="CASCADE"), primary_key=True),
    Column("store_id", ForeignKey("store.id", ondelete="CASCADE"), primary_key=True),
)


class Store(Base):
    __tablename__ = "store"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(120), unique=True)
    seller_id: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(4), default="eu")  # SP-API region: na, eu, fe
    marketplaces: Mapped[list[str]] = mapped_column(JSON, default=list)
    sender_address: Mapped[str | None] = mapped_column(String(320))  # approved in Seller Central
    allow_list: Mapped[list[str]] = mapped_column(JSON, default=list)  # compliance allow-list
    business_calendar: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    internal_target_minutes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[created]

    mailboxes: Mapped[list[Mailbox]] = relationship(back_populates="store")


class Mailbox(Base):
    __tablename__ = "mailbox"

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    imap_host: Mapped[str] = mapped_column(String(255))
    imap_port: Mapped[int] = mapped_column(Integer, default=993)
    imap_security: Mapped[str] = mapped_column(String(10), default="ssl")  # ssl, starttls, none
    username: Mapped[str] = mapped_column(String(320))
    password_encrypted: Mapped[str] = mapped_column(Text, default="")
    folder: Mapped[str] = mapped_column(String(255), default="INBOX")
    sent_folder: Mapped[str] = mapped_column(String(255), default="Sent")
    smtp_host: Mapped[str | None] = mapped_column(String(255))
    smtp_port: Mapped[int] = mapped_column(Integer, default=587)
    smtp_security: Mapped[str] = mapped_column(String(10), default="starttls")
    smtp_username: Mapped[str | None] = mapped_column(String(320))
    smtp_password_encrypted: Mapped[str] = mapped_column(Text, default="")
    # Whether the provider files mail sent over SMTP in the Sent folder by itself (Gmail, Outlook do); None:
    # not known yet. Checked after every send; only True lets an interrupted send be retried automatically.
    files_sent_mail: Mapped[bool | None] = mapped_column(Boolean)
    # The high-water mark: moved only in the transaction that stores the mails it covers.
    uidvalidity: Mapped[int | None] = mapped_column(BigId)
    last_uid: Mapped[int] = mapped_column(BigId, default=0)
    last_synced_at: Mapped[datetime | None]
    newest_mail_at: Mapped[datetime | None]
    last_error_code: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(Text)
    # The sync that holds the mailbox ("host:pid:run") and until when; a dead holder's claim is taken over.
    sync_owner: Mapped[str | None] = mapped_column(String(120))
    sync_lease_until: Mapped[datetime | None]
    created_at: Mapped[created]

    store: Mapped[Store] = relationship(back_populates="mailboxes")

    __table_args__ = (UniqueConstraint("store_id", "name"),)


class Agent(Base):
    __tablename__ = "agent"

    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(_enum(Role), default=Role.AGENT)
    ui_language: Mapped[str] = mapped_column(String(8), default="en")  # en or zh
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)  # reply-language skills
    intent_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    capacity: Mapped[int] = mapped_column(Integer, default=50)
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created]
    # The username folded once (NFKC + casefold), the key single sign-on e-mails are matched on.
    username_key: Mapped[str] = mapped_column(String(320), index=True, default="")
    # The single sign-on identity bound at its first sign-in (issuer + subject); only that one gets in after.
    sso_issuer: Mapped[str | None] = mapped_column(String(400))
    sso_subject: Mapped[str | None] = mapped_column(String(255))
    # Raised on a password reset, role change, deactivation or unbind: every browser signed in before is out.
    session_generation: Mapped[int] = mapped_column(Integer, default=0)
    # Created with `--demo` and its password never changed since: the app shows a banner while any exists.
    demo_password: Mapped[bool] = mapped_column(Boolean, default=False)

    stores: Mapped[list[Store]] = relationship(secondary=agent_store)


class SignInThrottle(Base):
    """Failed local sign-ins per folded username (`user:...`) or per client address (`client:...`)."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)  # until an admin unlocks it


class RawMail(Base):
    """Raw bytes of every mail, exactly as received, keyed by content hash (identical bytes stored once)."""

    __tablename__ = "raw_mail"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[created]


class Conversation(Base):
    __tablename__ = "conversation"

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), index=True)
    thread_key: Mapped[str] = mapped_column(String(400))
    marketplace: Mapped[str | None] = mapped_column(String(4), index=True)
    buyer_address: Mapped[str] = mapped_column(String(320))
    buyer_name: Mapped[str | None] = mapped_column(String(200))
    order_id: Mapped[str | None] = mapped_column(String(20), index=True)
    asin: Mapped[str | None] = mapped_column(String(16))
    product_title: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(_enum(ConversationStatus), default=ConversationStatus.OPEN)
    language: Mapped[str | None] = mapped_column(String(8))
    intent: Mapped[str | None] = mapped_column(String(40))
    intent_score: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    awaiting_since: Mapped[datetime | None]  # oldest unanswered buyer message
    amazon_deadline: Mapped[datetime | None]  # awaiting_since + 24 h, weekends included
    internal_deadline: Mapped[datetime | None]
    last_message_at: Mapped[datetime | None]
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"), index=True)
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    claim_expires_at: Mapped[datetime | None]
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What SP-API said about the order when the last draft was made, and why not when it could not say.
    order_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    order_context_status: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[created]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    store: Mapped[Store] = relationship()
    messages: Mapped[list[Message]] = relationship(back_populates="conversation", order_by="Message.received_at")
    drafts: Mapped[list[Draft]] = relationship(back_populates="conversation", order_by="Draft.id")

    __table_args__ = (
        UniqueConstraint("store_id", "thread_key"),
        Index("ix_conversation_queue", "status", "amazon_deadline"),
    )


class Message(Base):
    """One mail, in or out. Unparsed mails are rows too (kind `unparsed`), with their raw bytes."""

    __tablename__ = "message"

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"), index=True)
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailbox.id", ondelete="SET NULL"))
    direction: Mapped[str] = mapped_column(String(3), default="in")  # in, out
    kind: Mapped[str] = mapped_column(String(24))  # a MailKind value, or "unparsed"
    dedupe_key: Mapped[str] = mapped_column(String(400))
    message_id: Mapped[str | None] = mapped_column(String(400), index=True)
    comm_token: Mapped[str | None] = mapped_column(String(200))
    related_message_id: Mapped[str | None] = mapped_column(String(400))
    notification_type: Mapped[str | None] = mapped_column(String(80))
    subject: Mapped[str] = mapped_column(Text, default="")
    from_address: Mapped[str | None] = mapped_column(String(320))
    to_address: Mapped[str | None] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    raw_sha256: Mapped[str | None] = mapped_column(ForeignKey("raw_mail.sha256"))
    source: Mapped[str | None] = mapped_column(Text)  # "imap:<mailbox>:<uid>", "file:<path>", "reply"
    parse_error: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    suspicious: Mapped[bool] = mapped_column(Boolean, default=False)
    # Why a human should look twice: suspicious signs, an arrival date that was clamped, a mail cut to size.
    # A server default only: inserts written against an older schema (migration tests) must not name it.
    flags: Mapped[list[str]] = mapped_column(JSON, server_default="[]")
    language: Mapped[str | None] = mapped_column(String(8))
    language_score: Mapped[float | None] = mapped_column(Float)
    intent: Mapped[str | None] = mapped_column(String(40))
    intent_score: Mapped[float | None] = mapped_column(Float)
    intent_needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    # Every intent's probability (None: classified before scores were kept) and the runner-up intent, so the
    # page can show the top two and routing or statistics can combine them ("order status, angry").
    intent_scores: Mapped[dict[str, float] | None] = mapped_column(JSON)
    intent_secondary: Mapped[str | None] = mapped_column(String(40))
    processed_at: Mapped[datetime | None]  # the drafting pipeline has handled it
    # Buyer messages: the first reply and the first "no response needed" at or after it, recorded as they
    # happen (`engine.services.stats_record`) so response statistics need not rebuild every thread.
    answered_at: Mapped[datetime | None]
    cleared_at: Mapped[datetime | None]
    created_at: Mapped[created]

    conversation: Mapped[Conversation | None] = relationship(back_populates="messages")

    __table_args__ = (
        UniqueConstraint("store_id", "dedupe_key"),
        Index("ix_message_unprocessed", "kind", "processed_at"),
        # Statistics read messages by time window and direction (buyer messages, replies); covering the
        # columns they group by lets both backends answer from the index alone.
        Index("ix_message_timeline", "direction", "received_at", "kind", "conversation_id", "intent", "language"),
        # A conversation's messages one way, in time order: the buyer's next message after a reply.
        Index("ix_message_conversation_thread", "conversation_id", "direction", "received_at"),
        # Response times and late rates over 90 days of buyer messages, from the index alone.
        Index("ix_message_answers", "kind", "direction", "received_at", "conversation_id", "answered_at", "cleared_at"),
    )


class Draft(Base):
    __tablename__ = "draft"

    id: Mapped[intpk]
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(_enum(DraftStatus), default=DraftStatus.PENDING, index=True)
    action: Mapped[str] = mapped_column(String(24), default="reply")  # reply, no_response_needed
    text: Mapped[str] = mapped_column(Text, default="")  # as drafted
    final_text: Mapped[str | None] = mapped_column(Text)  # as sent (after edits)
    language: Mapped[str | None] = mapped_column(String(8))
    intent: Mapped[str | None] = mapped_column(String(40))
    drafter: Mapped[str] = mapped_column(String(40))
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_version: Mapped[str | None] = mapped_column(String(40))
    template_id: Mapped[str | None] = mapped_column(String(120))
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    verdict: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(index=True)  # statistics' window of decisions
    edit_distance: Mapped[float | None] = mapped_column(Float)  # draft -> sent text, recorded when queued
    created_at: Mapped[created]

    conversation: Mapped[Conversation] = relationship(back_populates="drafts")

    __table_args__ = (
        Index("ix_draft_pending", "status", "conversation_id"),  # the queue's pending draft per conversation
        Index("ix_draft_created_at", "created_at"),  # recurring questions: drafts made in a window
        # Draft quality and per-agent counts over a window of decisions, from the index alone.
        Index(
            "ix_draft_decisions",
            "decided_at",
            "status",
            "edit_distance",
            "decided_by_id",
            "intent",
            "language",
            "template_id",
            "drafter",
            "message_id",
            "conversation_id",
        ),
    )


class OutboxItem(Base):
    """One reply on its way out. The Message-ID is fixed before the first attempt so a retry is detectable."""

    __tablename__ = "outbox_item"

    id: Mapped[intpk]
    draft_id: Mapped[int] = mapped_column(ForeignKey("draft.id", ondelete="CASCADE"), unique=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailbox.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(_enum(OutboxState), default=OutboxState.APPROVED, index=True)
    message_id: Mapped[str] = mapped_column(String(400), unique=True)
    from_address: Mapped[str] = mapped_column(String(320))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    in_reply_to: Mapped[str | None] = mapped_column(String(400))
    references: Mapped[list[str]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    # While `sending`: the worker holds the item until then (renewed during the send), and once the DATA
    # command is about to go out, `handed_over_at` says the server may have the mail.
    lease_until: Mapped[datetime | None]
    handed_over_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[created]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    # Replies sent in a window, per conversation: response times and the satisfaction signal.
    __table_args__ = (Index("ix_outbox_item_sent", "state", "sent_at", "conversation_id"),)


class Note(Base):
    __tablename__ = "note"

    id: Mapped[intpk]
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[created]


class AuditEvent(Base):
    __tablename__ = "audit_event"

    id: Mapped[intpk]
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))  # null: system
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(BigId)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_entity", "entity", "entity_id"),
        Index("ix_audit_action_at", "action", "at"),  # e.g. every "no response needed" since a date
    )


class KnowledgeItem(Base):
    """A past answer the retriever may draw on."""

    __tablename__ = "knowledge_item"

    id: Mapped[intpk]
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(40), index=True)
    language: Mapped[str] = mapped_column(String(8), index=True)
    marketplace: Mapped[str | None] = mapped_column(String(4))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(24), default="manual")  # seed, promoted, manual
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    origin_draft_id: Mapped[int | None] = mapped_column(ForeignKey("draft.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    created_at: Mapped[created]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class TemplateRow(Base):
    __tablename__ = "template"

    id: Mapped[intpk]
    key: Mapped[str] = mapped_column(String(120), unique=True)  # "order_status.de", "order_status.de.fba"
    intent: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    required: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class IntentExample(Base):
    """Training examples added by leads or from agents' corrections in the queue."""

    __tablename__ = "intent_example"

    id: Mapped[intpk]
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(40))
    language: Mapped[str | None] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(24), default="correction")  # correction, manual
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, accepted, rejected
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    created_at: Mapped[created]


class SyncRun(Base):
    __tablename__ = "sync_run"

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(16))  # imap, import
    store_id: Mapped[int | None] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[created]
    finished_at: Mapped[datetime | None]
    # running, ok, partial, error, skipped, interrupted (the process died; closed by the next run)
    status: Mapped[str] = mapped_column(String(16), default="running")
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    unparsed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{"code","message"}]
    quarantined: Mapped[int] = mapped_column(Integer, default=0)


class QuarantinedMail(Base):
    """A mail that could be stored neither parsed nor as `unparsed`: kept by mailbox and UID (and its raw
    bytes when they could be kept) so the mailbox moves on and a human can retry it."""

    __tablename__ = "quarantined_mail"

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"), index=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"), index=True)
    uidvalidity: Mapped[int] = mapped_column(BigId)
    uid: Mapped[int] = mapped_column(BigId)
    size: Mapped[int] = mapped_column(BigId, default=0)
    reason: Mapped[str] = mapped_column(Text)
    raw_sha256: Mapped[str | None] = mapped_column(ForeignKey("raw_mail.sha256"))
    status: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting, stored
    message_row_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[created]
    retried_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("mailbox_id", "uidvalidity", "uid"),)


class TeamSetting(Base):
    """Team-wide settings edited in the app (routing rules, ...): one JSON value per key, shared by every
    app and worker process, so they live in the database rather than in a file on one machine."""

    __tablename__ = "team_setting"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class WebhookEndpoint(Base):
    """A receiver of signed event notifications (Standard Webhooks); the secret is encrypted at rest."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[intpk]
    url: Mapped[str] = mapped_column(String(2000))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    store_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # empty: every store
    include_text: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)  # set when failures disabled it
    failing_since: Mapped[datetime | None]  # the first failure since the last success
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    created_at: Mapped[created]


class WebhookEvent(Base):
    """The event outbox: written in the transaction of the change it reports, so it exists iff that committed."""

    __tablename__ = "webhook_event"

    id: Mapped[intpk]
    event_type: Mapped[str] = mapped_column(String(40))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("store.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)  # events that happen once
    created_at: Mapped[created]


class WebhookDelivery(Base):
    """One event on its way to one endpoint, and the log of its attempts' outcome."""

    __tablename__ = "webhook_delivery"

    id: Mapped[intpk]
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_event.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[created]

    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
    )


class ApiToken(Base):
    """A bearer token for the HTTP API, stored as its SHA-256; it acts as its own service agent, so its role,
    stores and audit trail work exactly like a user's."""

    __tablename__ = "api_token"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(80), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    created_at: Mapped[created]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

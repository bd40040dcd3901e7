"""Storing incoming mail: every mail exactly once, raw bytes always kept, threads rebuilt.

A buyer message opens (or reopens) its conversation and starts Amazon's 24 h clock. Amazon's
notices (bounces, opt-outs, claims, returns, refunds, copies of our replies) are stored and linked
to the conversation or outbound reply they concern, but never enter the reply queue.

Mail is stored a batch at a time (`store_mails`; `store_mail` is a batch of one): a few queries per
batch find what is already stored and which threads exist, the rows go in with one flush, and each
mail ends up exactly as if the mails had been stored one by one, in order. The batch runs in a
savepoint; when a concurrent writer stored one of its mails first, the batch is rolled back and its
mails are stored one by one, each in a savepoint of its own.

Parsing (`prepare_mails`) is separate from storing (`store_prepared`), so callers parse before their
transaction starts. `store_resilient` never lets one mail stop the others: a mail the database refuses
as parsed (a value too long, a NUL, a bad encoding) is stored as `unparsed` with sanitised values, and a
mail that cannot even be stored that way comes back `failed` for the caller to quarantine.

The arrival time is the server's (IMAP INTERNALDATE) when known, else the mail's `Date`; a time in the
future or before `not_before` is clamped and the message flagged. A suspicious buyer message opens its
conversation like any other, so it is seen in the queue, but it is never drafted automatically.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.db.base import utcnow
from engine.db.models import Conversation, ConversationStatus, Message, OutboxItem, OutboxState, RawMail, Store
from engine.errors import MailParseError
from engine.integrations.events import emit_messages_received
from engine.mail import MailKind, ParsedMail, parse_mail, thread_key
from engine.services import audit
from engine.services.deadlines import refresh_internal_deadline_or_warn
from engine.services.stats_record import record_answers
from engine.workflow.sla import AMAZON_RESPONSE_WINDOW

UNPARSED = "unparsed"

Retime = Callable[[datetime], datetime]

# Notices about an order that a human should see on the conversation, without a reply being due.
_ORDER_NOTICES = frozenset(
    {MailKind.ATOZ_CLAIM, MailKind.RETURN_REQUEST, MailKind.CANCELLATION_REQUEST, MailKind.REFUND_NOTICE}
)
_BOUNCES = frozenset({MailKind.DELIVERY_FAILURE, MailKind.OPTOUT})
_IN_LIST_SIZE = 1000  # values per `IN (...)`: far below SQLite's and PostgreSQL's bind-parameter limits
_NEVER = datetime.min.replace(tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)  # server clocks run a little ahead; beyond this a date is in the future
_SANE_TEXT = 100_000  # characters of a sanitised body kept on an `unparsed` row


@dataclass(frozen=True)
class IncomingMail:
    raw: bytes
    source: str  # "imap:<mailbox>:<uidvalidity>:<uid>", "file:<path>", ...
    mailbox_id: int | None = None
    arrived_at: datetime | None = None  # the server's receipt time (IMAP INTERNALDATE)
    not_before: datetime | None = None  # no mail of this source can be older: earlier dates are clamped
    note: str | None = None  # why a human should know more about it (e.g. only its beginning was fetched)


@dataclass(frozen=True)
class StoredMail:
    status: Literal["new", "duplicate", "unparsed", "failed"]  # failed: only `store_resilient`
    message_row_id: int | None
    kind: str
    reason: str | None = None  # why it could not be parsed


@dataclass(frozen=True)
class PreparedMail:
    """A mail hashed and parsed, before the database sees it."""

    mail: IncomingMail
    digest: str
    parsed: ParsedMail | None
    parse_error: str | None
    key: str  # the dedupe key

    @property
    def kind(self) -> str:
        return self.parsed.kind.value if self.parsed is not None else UNPARSED


def prepare_mails(mails: Iterable[IncomingMail]) -> list[PreparedMail]:
    """Hash and parse, outside any transaction. A mail the parser rejects or crashes on becomes `unparsed`
    with the reason; only `MemoryError` propagates (the caller retries with fewer mails at a time)."""
    return [_prepare(mail) for mail in mails]


def _prepare(mail: IncomingMail) -> PreparedMail:
    digest = hashlib.sha256(mail.raw).hexdigest()
    try:
        parsed = parse_mail(mail.raw)
    except MailParseError as exc:
        return PreparedMail(mail, digest, None, str(exc), f"sha:{digest}")
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a parser bug must not stop the mails after this one
        return PreparedMail(mail, digest, None, f"parser crashed: {type(exc).__name__}: {exc}"[:2000], f"sha:{digest}")
    return PreparedMail(mail, digest, parsed, None, parsed.dedupe_key or f"sha:{digest}")


def store_mail(
    session: Session,
    store: Store,
    raw: bytes,
    *,
    source: str,
    mailbox_id: int | None = None,
    retime: Retime | None = None,
) -> StoredMail:
    """Store one mail. `retime` maps its received time to another (only the demo inbox uses it)."""
    return store_mails(session, store, [IncomingMail(raw, source, mailbox_id)], retime=retime)[0]


def store_mails(
    session: Session, store: Store, mails: Sequence[IncomingMail], *, retime: Retime | None = None
) -> list[StoredMail]:
    """Store a batch of mails in order: one `StoredMail` per mail, the same as storing them one by one.

    A mail that is not a mail at all, or that crashes the parser, is kept as an `unparsed` row with the
    reason. A database error leaves the session as it was and propagates (see `store_resilient`).
    """
    return store_prepared(session, store, prepare_mails(mails), retime=retime)


def store_prepared(
    session: Session, store: Store, batch: Sequence[PreparedMail], *, retime: Retime | None = None
) -> list[StoredMail]:
    """Store mails parsed by `prepare_mails`, in order (see `store_mails`)."""
    batch = list(batch)
    if not batch:
        return []
    try:
        with session.begin_nested():
            return _store_batch(session, store, batch, retime)
    except IntegrityError:
        return [_store_alone(session, store, mail, retime) for mail in batch]


def _store_alone(session: Session, store: Store, mail: PreparedMail, retime: Retime | None) -> StoredMail:
    """One mail in a savepoint of its own. A unique-key conflict means a concurrent writer stored the mail
    (or opened its thread) first: the second try finds that row."""
    for _attempt in range(2):
        try:
            with session.begin_nested():
                return _store_batch(session, store, [mail], retime)[0]
        except IntegrityError:
            continue
    _keep_raw(session, [mail])  # rolled back with the row: the bytes are kept all the same
    return StoredMail("duplicate", None, mail.kind)


def _store_batch(session: Session, store: Store, batch: list[PreparedMail], retime: Retime | None) -> list[StoredMail]:
    _keep_raw(session, batch)
    stored = _stored_keys(session, store.id, {mail.key for mail in batch})
    parsed = [mail.parsed for mail in batch if mail.parsed is not None]
    threads = _Threads(session, store, parsed)
    replies = _our_replies(session, {p.related_message_id for p in parsed if p.related_message_id and not _opens(p)})
    added: dict[str, Message] = {}  # dedupe key → row added by this batch
    outcomes: list[StoredMail | tuple[Literal["new", "duplicate"], Message]] = []
    bounces: list[tuple[ParsedMail, Message]] = []
    for mail in batch:
        if mail.key in stored:
            row_id, kind = stored[mail.key]
            outcomes.append(StoredMail("duplicate", row_id, kind))
            continue
        if mail.key in added:
            outcomes.append(("duplicate", added[mail.key]))
            continue
        row = added[mail.key] = _new_row(store, mail, threads, replies, retime)
        session.add(row)  # in mail order, so row ids follow it
        outcomes.append(("new", row))
        if mail.parsed is not None and mail.parsed.kind in _BOUNCES:
            bounces.append((mail.parsed, row))
    session.flush()
    # A buyer message synced after a reply that came later than it is answered by that reply (statistics).
    record_answers(session, {row.conversation_id for row in added.values() if row.kind == "buyer_message"})
    emit_messages_received(session, added.values())  # webhook events commit with the mails
    for bounce, notice in bounces:  # after the flush: the notice's row id goes into the reply's error
        _mark_reply_undelivered(session, bounce, replies, notice)
    return [outcome if isinstance(outcome, StoredMail) else _outcome(*outcome) for outcome in outcomes]


def _outcome(status: Literal["new", "duplicate"], row: Message) -> StoredMail:
    if status == "new" and row.kind == UNPARSED:
        return StoredMail("unparsed", row.id, UNPARSED, reason=row.parse_error)
    return StoredMail(status, row.id, row.kind)


def _new_row(
    store: Store, mail: PreparedMail, threads: _Threads, replies: dict[str, OutboxItem], retime: Retime | None
) -> Message:
    parsed = mail.parsed
    now = utcnow()
    if parsed is None:
        received, flags = _arrival(mail, None, now, retime)
        return Message(
            store_id=store.id,
            mailbox_id=mail.mail.mailbox_id,
            kind=UNPARSED,
            dedupe_key=mail.key,
            raw_sha256=mail.digest,
            source=mail.mail.source,
            parse_error=mail.parse_error,
            received_at=received,
            processed_at=now,
            flags=flags,
        )
    received, flags = _arrival(mail, parsed.received_at, now, retime)
    flags += [f"suspicious: {reason}" for reason in parsed.suspicious_reasons]
    flags += list(parsed.parse_warnings)
    row = Message(
        store_id=store.id,
        mailbox_id=mail.mail.mailbox_id,
        direction="in",
        kind=parsed.kind.value,
        dedupe_key=mail.key,
        message_id=parsed.message_id,
        comm_token=parsed.comm_token,
        related_message_id=parsed.related_message_id,
        notification_type=parsed.notification_type,
        subject=parsed.subject,
        from_address=parsed.from_address,
        to_address=parsed.to_addresses[0] if parsed.to_addresses else None,
        body=parsed.body,
        received_at=received,
        raw_sha256=mail.digest,
        source=mail.mail.source,
        attachments=[
            {"filename": a.filename, "content_type": a.content_type, "size": a.size} for a in parsed.attachments
        ],
        suspicious=parsed.suspicious,
        flags=flags,
    )
    conversation: Conversation | None
    if _opens(parsed):
        conversation = threads.for_buyer_message(parsed)
        _buyer_message_arrived(conversation, store, parsed, received)
        if parsed.suspicious:
            row.processed_at = now  # a human reads it first: no automatic draft
    else:
        row.processed_at = utcnow()  # nothing to draft
        conversation = threads.linked(parsed, replies)
    if conversation is not None:
        row.conversation = conversation
    return row


def _opens(parsed: ParsedMail) -> bool:
    """A buyer message that opens or continues a conversation (and so waits for a reply)."""
    return parsed.kind == MailKind.BUYER_MESSAGE and bool(parsed.buyer_address)


def clamp_arrival(when: datetime, *, now: datetime, not_before: datetime | None = None) -> tuple[datetime, str | None]:
    """The arrival time to record, and why it was changed (None: kept). Pure."""
    if when > now + CLOCK_SKEW:
        return now, f"arrival date {when:%Y-%m-%d %H:%M} UTC is in the future: recorded as the time it was stored"
    if not_before is not None and when < not_before:
        return not_before, (
            f"arrival date {when:%Y-%m-%d %H:%M} UTC is before the mailbox could hold it: recorded as "
            f"{not_before:%Y-%m-%d %H:%M} UTC"
        )
    return when, None


def _arrival(
    mail: PreparedMail, header_date: datetime | None, now: datetime, retime: Retime | None
) -> tuple[datetime, list[str]]:
    """Arrival time: the server's receipt time first (a sender can forge `Date`), clamped; and the flags."""
    flags = [mail.mail.note] if mail.mail.note else []
    received = mail.mail.arrived_at or header_date or now
    if retime is not None:
        received = retime(received)
    received, why = clamp_arrival(received, now=now, not_before=mail.mail.not_before)
    if why:
        flags.append(why)
    return received, flags


# ---- resilient storing ----------------------------------------------------------------------------


def store_resilient(session: Session, store: Store, batch: Sequence[PreparedMail]) -> list[StoredMail]:
    """Like `store_prepared`, but no mail stops the others: when the batch fails, each mail is stored alone;
    one the database refuses is stored as `unparsed` with sanitised values; one refused even so comes back
    `failed` (with the reason) and nothing of it is stored. `MemoryError` propagates."""
    try:
        return store_prepared(session, store, batch)
    except MemoryError:
        raise
    except Exception:
        pass  # rolled back to before the batch: find the mail that fails it
    results: list[StoredMail] = []
    for mail in batch:
        try:
            results.append(store_prepared(session, store, [mail])[0])
            continue
        except MemoryError:
            raise
        except Exception as exc:
            first_error = _describe(exc)
        try:
            with session.begin_nested():
                results.append(_store_sanitised(session, store, mail, first_error))
        except MemoryError:
            raise
        except Exception as exc:
            results.append(StoredMail("failed", None, mail.kind, reason=f"{first_error}; then {_describe(exc)}"))
    return results


def _describe(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def sanitise_text(value: str | None, limit: int) -> str:
    """Text any database column takes: no NUL or other control characters (tab and line breaks stay), no
    unpaired surrogates, at most `limit` characters."""
    if not value:
        return ""
    value = value[: limit * 2].encode("utf-8", "replace").decode("utf-8")
    kept = "".join(ch for ch in value if ch in "\t\n\r" or not (ord(ch) < 32 or 127 <= ord(ch) < 160))
    return kept[:limit]


def _store_sanitised(session: Session, store: Store, mail: PreparedMail, why: str) -> StoredMail:
    """The mail as `unparsed`, keyed by its bytes, with what could be read of it cleaned to fit any column."""
    key = f"sha:{mail.digest}"
    found = _stored_keys(session, store.id, {key})
    if key in found:
        row_id, kind = found[key]
        return StoredMail("duplicate", row_id, kind)
    _keep_raw(session, [mail])
    parsed, now = mail.parsed, utcnow()
    received, flags = _arrival(mail, None, now, None)
    reason = f"could not be stored as parsed ({why})"
    row = Message(
        store_id=store.id,
        mailbox_id=mail.mail.mailbox_id,
        kind=UNPARSED,
        dedupe_key=key,
        raw_sha256=mail.digest,
        source=sanitise_text(mail.mail.source, 1000),
        parse_error=sanitise_text(reason, 2000),
        subject=sanitise_text(parsed.subject if parsed else "", 998),
        from_address=sanitise_text(parsed.from_address if parsed else "", 320) or None,
        body=sanitise_text(parsed.body if parsed else "", _SANE_TEXT),
        received_at=received,
        processed_at=now,
        suspicious=bool(parsed and parsed.suspicious),
        flags=[sanitise_text(flag, 500) for flag in flags],
    )
    session.add(row)
    session.flush()
    return StoredMail("unparsed", row.id, UNPARSED, reason=row.parse_error)


# ---- batch lookups ---------------------------------------------------------------------------------


def _in_lists(values: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), _IN_LIST_SIZE):
        yield ordered[start : start + _IN_LIST_SIZE]


def _keep_raw(session: Session, batch: Sequence[PreparedMail]) -> None:
    """Every mail's bytes, duplicates' too. Bytes already kept (by anyone, even a concurrent worker) stay."""
    rows = {m.digest: {"sha256": m.digest, "size": len(m.mail.raw), "content": m.mail.raw} for m in batch}
    # The two supported backends spell it alike: INSERT ... ON CONFLICT DO NOTHING.
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(RawMail).on_conflict_do_nothing(), list(rows.values()))


def _stored_keys(session: Session, store_id: int, keys: set[str]) -> dict[str, tuple[int, str]]:
    """Dedupe key → (row id, kind) of the mails among `keys` that the store already has."""
    found: dict[str, tuple[int, str]] = {}
    for chunk in _in_lists(keys):
        query = select(Message.dedupe_key, Message.id, Message.kind).where(
            Message.store_id == store_id, Message.dedupe_key.in_(chunk)
        )
        found.update((key, (row_id, kind)) for key, row_id, kind in session.execute(query))
    return found


def _our_replies(session: Session, message_ids: set[str]) -> dict[str, OutboxItem]:
    """Our outbound replies that notices refer to, by Message-ID; their conversations loaded too."""
    replies: dict[str, OutboxItem] = {}
    for chunk in _in_lists(message_ids):
        items = session.scalars(select(OutboxItem).where(OutboxItem.message_id.in_(chunk)))
        replies.update((item.message_id, item) for item in items)
    for conversation_id in {item.conversation_id for item in replies.values()}:
        session.get(Conversation, conversation_id)  # into the identity map, before any row is added
    return replies


class _Threads:
    """The store's conversations a batch can reach, read up front and then kept current as the batch opens
    and updates threads, so each mail finds what it would have found stored on its own."""

    def __init__(self, session: Session, store: Store, mails: Sequence[ParsedMail]) -> None:
        self._session, self._store = session, store
        self._by_key: dict[str, Conversation] = {}
        self._by_buyer: defaultdict[str, list[Conversation]] = defaultdict(list)  # oldest first
        self._by_order: defaultdict[str, list[Conversation]] = defaultdict(list)  # oldest first
        keys, buyers, orders = set(), set(), set()
        for parsed in mails:
            if _opens(parsed):
                assert parsed.buyer_address is not None
                keys.add(thread_key(parsed.buyer_address, parsed.order_id))
                if not parsed.order_id:
                    buyers.add(parsed.buyer_address.lower())
            elif parsed.kind in _ORDER_NOTICES and parsed.order_id:
                orders.add(parsed.order_id)
        found: dict[int, Conversation] = {}
        column: Any
        for column, values in (
            (Conversation.thread_key, keys),
            (func.lower(Conversation.buyer_address), buyers),
            (Conversation.order_id, orders),
        ):
            for chunk in _in_lists(values):
                query = select(Conversation).where(Conversation.store_id == store.id, column.in_(chunk))
                found.update((c.id, c) for c in session.scalars(query))
        for conversation_id in sorted(found):
            self._remember(found[conversation_id])

    def _remember(self, conversation: Conversation) -> None:
        self._by_key[conversation.thread_key] = conversation
        self._by_buyer[conversation.buyer_address.lower()].append(conversation)
        if conversation.order_id:
            self._by_order[conversation.order_id].append(conversation)

    def for_buyer_message(self, parsed: ParsedMail) -> Conversation:
        assert parsed.buyer_address is not None
        key = thread_key(parsed.buyer_address, parsed.order_id)
        conversation = self._by_key.get(key)
        if conversation is None and not parsed.order_id:
            # Current-generation mails may carry no order id: continue the buyer's latest thread (the newest
            # one on a tie).
            candidates = self._by_buyer.get(parsed.buyer_address.lower(), [])
            conversation = max(reversed(candidates), key=lambda c: c.last_message_at or _NEVER, default=None)
        if conversation is None:
            conversation = Conversation(
                store_id=self._store.id,
                thread_key=key,
                buyer_address=parsed.buyer_address,
                order_id=parsed.order_id,
                status=ConversationStatus.OPEN,
                tags=[],
            )
            self._session.add(conversation)
            self._remember(conversation)
        return conversation

    def linked(self, parsed: ParsedMail, replies: dict[str, OutboxItem]) -> Conversation | None:
        """The conversation a notice concerns: that of our reply it refers to, else the order's latest."""
        if parsed.related_message_id and (reply := replies.get(parsed.related_message_id)) is not None:
            return self._session.get(Conversation, reply.conversation_id)
        if parsed.kind in _ORDER_NOTICES and parsed.order_id:
            threads = self._by_order.get(parsed.order_id)
            return threads[-1] if threads else None
        return None


# ---- effects on conversations and replies -------------------------------------------------------------


def _buyer_message_arrived(conversation: Conversation, store: Store, parsed: ParsedMail, received: datetime) -> None:
    conversation.buyer_address = parsed.buyer_address or conversation.buyer_address
    conversation.marketplace = conversation.marketplace or parsed.marketplace
    conversation.buyer_name = conversation.buyer_name or parsed.buyer_name
    conversation.asin = conversation.asin or parsed.asin
    conversation.product_title = conversation.product_title or parsed.product_title
    conversation.subject = conversation.subject or parsed.subject
    if conversation.last_message_at is None or received > conversation.last_message_at:
        conversation.last_message_at = received
    # Amazon's clock runs from the oldest buyer message not yet answered; a newer one does not extend it.
    if conversation.awaiting_since is None or received < conversation.awaiting_since:
        conversation.awaiting_since = received
    conversation.amazon_deadline = conversation.awaiting_since + AMAZON_RESPONSE_WINDOW
    refresh_internal_deadline_or_warn(conversation, store, now=utcnow())
    if conversation.status != ConversationStatus.HOLD:
        conversation.status = ConversationStatus.OPEN


def _mark_reply_undelivered(
    session: Session, parsed: ParsedMail, replies: dict[str, OutboxItem], notice: Message
) -> None:
    outbox = replies.get(parsed.related_message_id) if parsed.related_message_id else None
    if outbox is None or outbox.state == OutboxState.FAILED:
        return
    before = {"state": outbox.state}
    reason = "buyer opted out of messages" if parsed.kind == MailKind.OPTOUT else "Amazon could not deliver it"
    outbox.state = OutboxState.FAILED
    outbox.last_error = f"Reply not delivered: {reason} (notice message #{notice.id})."
    audit.record(
        session,
        "outbox.undelivered",
        "outbox_item",
        outbox.id,
        before=before,
        after={"state": outbox.state, "reason": outbox.last_error},
    )

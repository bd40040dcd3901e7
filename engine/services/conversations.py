"""One conversation: what an agent sees, and every action an agent can take on it.

Permissions are checked here, not in the pages. Every action writes an audit event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.compliance import Verdict, check_outgoing
from engine.db.base import utcnow
from engine.db.models import (
    Agent,
    AuditEvent,
    Conversation,
    ConversationStatus,
    Draft,
    DraftStatus,
    IntentExample,
    Message,
    Note,
    OutboxItem,
)
from engine.errors import ConflictError, InputError, PermissionDenied
from engine.integrations.events import emit_conversation_event, emit_reply_event
from engine.send.outbox import enqueue_reply
from engine.services import audit, claims
from engine.services.intent_learning import relabel
from engine.services.stats_record import record_answers
from engine.taxonomy import INTENTS
from engine.workflow.permissions import Action, Principal, Role, has_store, require

# (text, buyer_language) -> verdict; the default is the pure gate without reply-language detection.
Checker = Callable[[str, str | None, list[str]], Verdict]


def default_checker(text: str, buyer_language: str | None, allow_list: list[str]) -> Verdict:
    return check_outgoing(text, buyer_language=buyer_language, allow_list=allow_list)


@dataclass(frozen=True)
class ConversationView:
    conversation: Conversation
    messages: list[Message]
    drafts: list[Draft]
    current_draft: Draft | None
    notes: list[Note]
    outbox: list[OutboxItem]


def _load(session: Session, principal: Principal, conversation_id: int, action: Action) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    # One answer for "no such conversation" and "another store's": an id reveals nothing about other stores.
    if conversation is None or not has_store(principal, conversation.store_id):
        raise PermissionDenied(
            f"Conversation {conversation_id} is not among your stores' conversations. Go back to the queue and refresh."
        )
    require(principal, action, store_id=conversation.store_id)
    return conversation


def _load_to_act(session: Session, principal: Principal, conversation_id: int, action: Action) -> Conversation:
    """`_load` for a change: refused while a colleague holds the conversation; acting takes or renews the
    actor's own claim."""
    conversation = _load(session, principal, conversation_id, action)
    claims.claim_for_action(session, principal, conversation, now=utcnow())
    return conversation


def get_conversation(session: Session, principal: Principal, conversation_id: int) -> ConversationView:
    conversation = _load(session, principal, conversation_id, Action.VIEW_QUEUE)
    drafts = list(conversation.drafts)
    current = next((d for d in reversed(drafts) if d.status == DraftStatus.PENDING), None)
    notes = list(session.scalars(select(Note).where(Note.conversation_id == conversation.id).order_by(Note.id)))
    outbox = list(
        session.scalars(select(OutboxItem).where(OutboxItem.conversation_id == conversation.id).order_by(OutboxItem.id))
    )
    return ConversationView(conversation, list(conversation.messages), drafts, current, notes, outbox)


def _pending_draft(session: Session, conversation: Conversation, draft_id: int) -> Draft:
    draft = session.get(Draft, draft_id)
    if draft is None or draft.conversation_id != conversation.id:
        raise InputError(f"Draft {draft_id} does not belong to this conversation. Refresh the page.")
    if draft.status != DraftStatus.PENDING:
        raise ConflictError(f"This draft is already {draft.status}. Refresh the conversation to see the latest one.")
    return draft


def approve_draft(
    session: Session,
    principal: Principal,
    draft_id: int,
    *,
    final_text: str | None = None,
    checker: Checker = default_checker,
) -> OutboxItem:
    """Approve (or edit and approve) a draft: the gate checks the exact final text, then it is queued to send."""
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise InputError(f"Draft {draft_id} does not exist. Refresh the page.")
    conversation = _load_to_act(session, principal, draft.conversation_id, Action.SEND_REPLY)
    draft = _pending_draft(session, conversation, draft_id)
    if draft.action != "reply" and final_text is None:
        raise InputError("This draft proposes no reply. Mark the conversation as 'no response needed' or write one.")
    text = (final_text if final_text is not None else draft.text).strip()
    if not text:
        raise InputError("The reply is empty. Write a reply or mark the conversation as 'no response needed'.")
    verdict = checker(text, conversation.language, list(conversation.store.allow_list or []))
    item = enqueue_reply(session, draft, text, verdict)  # raises ComplianceBlocked
    edited = text != draft.text.strip()
    before = {"status": draft.status}
    draft.status = DraftStatus.EDITED if edited else DraftStatus.APPROVED
    draft.final_text = text
    draft.decided_by_id = principal.agent_id
    draft.decided_at = utcnow()
    draft.allowed, draft.verdict = verdict.allowed, verdict.to_dict()
    conversation.status = ConversationStatus.WAITING
    claims.release_own(conversation, principal.agent_id)
    audit.record(
        session,
        "draft.approve",
        "draft",
        draft.id,
        actor_id=principal.agent_id,
        before=before,
        after={"status": draft.status, "edited": edited, "outbox_id": item.id},
    )
    emit_reply_event(session, "reply.approved", item, approved_by=principal.agent_id, edited=edited)
    return item


def reject_draft(session: Session, principal: Principal, draft_id: int, reason: str) -> Draft:
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise InputError(f"Draft {draft_id} does not exist. Refresh the page.")
    conversation = _load_to_act(session, principal, draft.conversation_id, Action.ACT_ON_CONVERSATION)
    draft = _pending_draft(session, conversation, draft_id)
    if not reason.strip():
        raise InputError("Say why the draft is rejected: the reason trains the team's templates and drafter.")
    draft.status = DraftStatus.REJECTED
    draft.reject_reason = reason.strip()
    draft.decided_by_id, draft.decided_at = principal.agent_id, utcnow()
    audit.record(
        session, "draft.reject", "draft", draft.id, actor_id=principal.agent_id, after={"reason": draft.reject_reason}
    )
    return draft


def _set_status(
    session: Session, principal: Principal, conversation_id: int, status: ConversationStatus, action: str
) -> Conversation:
    conversation = _load_to_act(session, principal, conversation_id, Action.ACT_ON_CONVERSATION)
    before = {"status": conversation.status}
    conversation.status = status
    audit.record(
        session,
        action,
        "conversation",
        conversation.id,
        actor_id=principal.agent_id,
        before=before,
        after={"status": status},
    )
    return conversation


def mark_no_response_needed(session: Session, principal: Principal, conversation_id: int) -> Conversation:
    """Stops Amazon's clock (mark it in Seller Central too); a new buyer message reopens the thread."""
    conversation = _set_status(
        session, principal, conversation_id, ConversationStatus.NO_RESPONSE_NEEDED, "conversation.no_response_needed"
    )
    conversation.awaiting_since = None
    conversation.amazon_deadline = None
    conversation.internal_deadline = None
    record_answers(session, [conversation.id])
    for draft in conversation.drafts:
        if draft.status == DraftStatus.PENDING:
            draft.status = DraftStatus.SUPERSEDED
    claims.release_own(conversation, principal.agent_id)
    return conversation


def hold(session: Session, principal: Principal, conversation_id: int) -> Conversation:
    """Parked: out of the way, but the Amazon deadline still runs and stays visible."""
    return _set_status(session, principal, conversation_id, ConversationStatus.HOLD, "conversation.hold")


def reopen(session: Session, principal: Principal, conversation_id: int) -> Conversation:
    return _set_status(session, principal, conversation_id, ConversationStatus.OPEN, "conversation.reopen")


def close(session: Session, principal: Principal, conversation_id: int) -> Conversation:
    conversation = _load_to_act(session, principal, conversation_id, Action.ACT_ON_CONVERSATION)
    if conversation.amazon_deadline is not None:
        raise ConflictError(
            "A buyer message still awaits a reply. Send one or mark it 'no response needed' before closing."
        )
    conversation = _set_status(session, principal, conversation_id, ConversationStatus.CLOSED, "conversation.close")
    claims.release_own(conversation, principal.agent_id)
    emit_conversation_event(session, "conversation.closed", conversation, closed_by=principal.agent_id)
    return conversation


def add_note(session: Session, principal: Principal, conversation_id: int, text: str) -> Note:
    conversation = _load_to_act(session, principal, conversation_id, Action.ACT_ON_CONVERSATION)
    if not text.strip():
        raise InputError("The note is empty.")
    note = Note(conversation_id=conversation.id, author_id=principal.agent_id, text=text.strip())
    session.add(note)
    session.flush()
    audit.record(
        session,
        "conversation.note",
        "conversation",
        conversation.id,
        actor_id=principal.agent_id,
        after={"note_id": note.id},
    )
    return note


def assign(session: Session, principal: Principal, conversation_id: int, agent_id: int | None) -> Conversation:
    conversation = _load_to_act(session, principal, conversation_id, Action.ACT_ON_CONVERSATION)
    if agent_id is not None:
        assignee = session.get(Agent, agent_id)
        works_here = assignee is not None and (
            assignee.role == Role.ADMIN or conversation.store_id in {s.id for s in assignee.stores}
        )
        if assignee is None or not assignee.active or not works_here:
            raise InputError("Assign it to an active colleague who works on this store; reload the page for the list.")
    before = {"assignee_id": conversation.assignee_id}
    conversation.assignee_id = agent_id
    audit.record(
        session,
        "conversation.assign",
        "conversation",
        conversation.id,
        actor_id=principal.agent_id,
        before=before,
        after={"assignee_id": agent_id},
    )
    return conversation


def correct_intent(session: Session, principal: Principal, message_id: int, intent: str) -> IntentExample:
    """An agent's correction: fixes the message and becomes a (pending) training example."""
    if intent not in INTENTS:
        raise InputError(f"Unknown intent {intent!r}. Pick one of: {', '.join(INTENTS)}.")
    message = session.get(Message, message_id)
    if message is None or message.conversation_id is None:
        raise InputError(f"Message {message_id} does not exist. Refresh the page.")
    conversation = _load_to_act(session, principal, message.conversation_id, Action.ACT_ON_CONVERSATION)
    before = {"intent": message.intent}
    example = relabel(session, principal, message, intent, source="correction", status="pending")
    conversation.intent = intent
    audit.record(
        session,
        "message.correct_intent",
        "message",
        message.id,
        actor_id=principal.agent_id,
        before=before,
        after={"intent": intent},
    )
    return example


# --- tags ---------------------------------------------------------------------------------------------------

MAX_TAGS = 10
MAX_TAG_LENGTH = 32
_TAG_ACTION = "conversation.tags"
_NOT_IN_TAG = re.compile(r"[^\w-]+")  # \w is Unicode: Chinese, Japanese and accented tags are fine


def normalize_tag(tag: str) -> str:
    """One spelling per tag: lower case, spaces to dashes, letters, digits, `-` and `_` only."""
    return _NOT_IN_TAG.sub("-", tag.strip().lower()).strip("-")[:MAX_TAG_LENGTH]


def set_tags(session: Session, principal: Principal, conversation_id: int, tags: Sequence[str]) -> list[str]:
    """Replace the conversation's tags (normalized, de-duplicated, in the order given)."""
    conversation = _load_to_act(session, principal, conversation_id, Action.ACT_ON_CONVERSATION)
    cleaned = list(dict.fromkeys(t for t in (normalize_tag(tag) for tag in tags) if t))
    if len(cleaned) > MAX_TAGS:
        raise InputError(f"A conversation takes at most {MAX_TAGS} tags; remove {len(cleaned) - MAX_TAGS}.")
    before = list(conversation.tags or [])
    if cleaned != before:
        conversation.tags = cleaned
        audit.record(
            session,
            _TAG_ACTION,
            "conversation",
            conversation.id,
            actor_id=principal.agent_id,
            before={"tags": before},
            after={"tags": cleaned},
        )
        session.flush()
    return cleaned


def recent_tags(session: Session, principal: Principal, *, limit: int = 50) -> list[str]:
    """Tags the team used lately on the principal's stores, most recent first: suggestions, so everyone
    spells them alike. Read from the audit trail (indexed by action and time) rather than by scanning every
    conversation."""
    query = select(AuditEvent.after).where(AuditEvent.action == _TAG_ACTION)
    if principal.role != Role.ADMIN:
        query = query.join(Conversation, Conversation.id == AuditEvent.entity_id).where(
            Conversation.store_id.in_(list(principal.store_ids) or [-1])
        )
    events = session.scalars(query.order_by(AuditEvent.id.desc()).limit(500))
    seen: dict[str, None] = {}
    for after in events:
        for tag in (after or {}).get("tags", []):
            seen.setdefault(tag)
    return list(seen)[:limit]

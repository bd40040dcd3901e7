"""An agent's decision on a reply whose delivery is unknown: it did go out ("mark sent"), or it did not
("send again": back to the outbox, through the compliance gate again). Both are audited with the agent.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.compliance import blocked_message, check_outgoing
from engine.db.base import utcnow
from engine.db.models import Conversation, OutboxItem, OutboxState
from engine.errors import ComplianceBlocked, ConflictError, InputError
from engine.send.outbox import Gate, outgoing_verdict
from engine.send.settle import mark_sent
from engine.services import audit, claims
from engine.workflow.permissions import Action, Principal, require

__all__ = ["mark_sent_by_hand", "send_again"]


def _unknown_item(session: Session, principal: Principal, item_id: int) -> OutboxItem:
    item = session.scalars(
        select(OutboxItem).where(OutboxItem.id == item_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if item is None:
        raise InputError(f"Reply {item_id} does not exist. Refresh the conversation.")
    require(principal, Action.SEND_REPLY, store_id=item.store_id)
    claims.claim_for_action(session, principal, session.get_one(Conversation, item.conversation_id), now=utcnow())
    if item.state != OutboxState.UNKNOWN:
        raise ConflictError(f"This reply is {item.state} now, so there is nothing to decide. Refresh the page.")
    return item


def mark_sent_by_hand(session: Session, principal: Principal, item_id: int) -> OutboxItem:
    """The agent found the reply delivered (Sent folder, Seller Central): it counts as sent, never resent."""
    item = _unknown_item(session, principal, item_id)
    mark_sent(session, item, utcnow(), how="marked sent by an agent", actor_id=principal.agent_id)
    return item


def send_again(session: Session, principal: Principal, item_id: int, *, gate: Gate = check_outgoing) -> OutboxItem:
    """The agent found the reply missing: it goes back to the outbox, unchanged, if the gate still passes it
    (the send worker checks it once more before sending)."""
    item = _unknown_item(session, principal, item_id)
    verdict = outgoing_verdict(session, item, gate)
    if not verdict.allowed:
        raise ComplianceBlocked(blocked_message(verdict))
    before = {"state": item.state, "last_error": item.last_error}
    item.state, item.next_attempt_at, item.last_error = OutboxState.APPROVED, None, None
    item.lease_until = item.handed_over_at = None
    item.updated_at = utcnow()
    audit.record(
        session,
        "outbox.send_again",
        "outbox_item",
        item.id,
        actor_id=principal.agent_id,
        before=before,
        after={"state": item.state},
    )
    return item

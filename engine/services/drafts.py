"""Regenerating a draft on an agent's request: the newest buyer message goes through the drafter again."""

from __future__ import annotations

from sqlalchemy.orm import Session

from engine.components import Components
from engine.db.base import utcnow
from engine.db.models import Conversation, Draft
from engine.errors import InputError
from engine.services import audit
from engine.services.claims import claim_for_action
from engine.services.pipeline import draft_reply
from engine.workflow.permissions import Action, Principal, require


def regenerate_draft(session: Session, principal: Principal, components: Components, conversation_id: int) -> Draft:
    """A fresh draft for the newest buyer message; the pending one is superseded."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise InputError(f"Conversation {conversation_id} does not exist. Go back to the queue and refresh.")
    require(principal, Action.ACT_ON_CONVERSATION, store_id=conversation.store_id)
    claim_for_action(session, principal, conversation, now=utcnow())  # refuses while a colleague holds it
    buyer_messages = [m for m in conversation.messages if m.direction == "in" and m.kind == "buyer_message"]
    if not buyer_messages:
        raise InputError("This conversation has no buyer message to answer, so there is nothing to draft.")
    draft = draft_reply(session, components, conversation, buyer_messages[-1])
    session.flush()
    audit.record(session, "draft.regenerate", "draft", draft.id, actor_id=principal.agent_id)
    return draft

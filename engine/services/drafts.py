"""Regenerating a draft on an agent's request: the newest buyer message goes through the drafter again."""

from __future__ import annotations

from sqlalchemy.orm import Session

from engine.components import Components
from engine.db.base import utcnow
from engine.db.models import Conversation
from engine.db.session import Database
from engine.errors import InputError
from engine.services import audit
from engine.services.claims import claim_for_action
from engine.services.pipeline import DraftJob, compute_draft, draft_job, store_draft
from engine.workflow.permissions import Action, Principal, require


def regenerate_draft(db: Database, principal: Principal, components: Components, conversation_id: int) -> int:
    """A fresh draft for the newest buyer message; the pending one is superseded. Returns the draft's id.

    Three steps, so that the drafter (an LLM over the network) never runs inside a transaction: check and
    claim, draft with no transaction open, then store."""
    with db.transaction() as session:
        job, language, intent = _regeneration_job(session, principal, conversation_id)
    outcome = compute_draft(components, job, language=language, intent=intent)
    with db.transaction() as session:
        conversation = session.get(Conversation, job.conversation_id)
        if conversation is None:
            raise InputError(f"Conversation {conversation_id} does not exist. Go back to the queue and refresh.")
        draft = store_draft(session, conversation, outcome)
        session.flush()
        audit.record(session, "draft.regenerate", "draft", draft.id, actor_id=principal.agent_id)
        return draft.id


def _regeneration_job(session: Session, principal: Principal, conversation_id: int) -> tuple[DraftJob, str, str]:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise InputError(f"Conversation {conversation_id} does not exist. Go back to the queue and refresh.")
    require(principal, Action.ACT_ON_CONVERSATION, store_id=conversation.store_id)
    claim_for_action(session, principal, conversation, now=utcnow())  # refuses while a colleague holds it
    buyer_messages = [m for m in conversation.messages if m.direction == "in" and m.kind == "buyer_message"]
    if not buyer_messages:
        raise InputError("This conversation has no buyer message to answer, so there is nothing to draft.")
    newest = buyer_messages[-1]
    return draft_job(conversation, newest), newest.language or "en", newest.intent or "other"

"""Translation for the conversation page: the buyer's message into the agent's language, and the draft
(or the agent's edited reply) back into it, so the agent can check what will be sent.

Permissions are checked here, not in the page. Translating a stored message sends buyer text to an
external model, so each call that reaches the model writes an audit event (cache hits do not: nothing
left the building again). The audit keeps languages, model and size, never the text.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from engine.db.models import Message
from engine.drafting.prompts import LANGUAGE_NAMES
from engine.drafting.translate import Translation, Translator
from engine.errors import InputError
from engine.services import audit
from engine.workflow.permissions import Action, Principal, require

__all__ = ["back_translate", "translate_message"]


def _check_language(code: str | None, role: str) -> None:
    if code is not None and code not in LANGUAGE_NAMES:
        raise InputError(
            f"The {role} language {code!r} is not one ReplyDesk knows; use one of {', '.join(sorted(LANGUAGE_NAMES))}."
        )


def translate_message(
    session: Session, principal: Principal, message_id: int, translator: Translator, *, target: str
) -> Translation:
    """The stored message's body in `target` (the agent's interface language)."""
    message = session.get(Message, message_id)
    if message is None:
        raise InputError(f"Message {message_id} does not exist. Go back to the queue and refresh.")
    require(principal, Action.VIEW_QUEUE, store_id=message.store_id)
    _check_language(target, "target")
    source = message.language if message.language in LANGUAGE_NAMES else None  # None: the model detects it
    conversation = message.conversation
    known = {"buyer_name": conversation.buyer_name} if conversation and conversation.buyer_name else None
    translation = translator.translate(message.body, source=source, target=target, known=known)
    if translation.model is not None and not translation.cached:
        audit.record(
            session,
            "message.translate",
            "message",
            message.id,
            actor_id=principal.agent_id,
            after={
                "source": translation.source,
                "target": translation.target,
                "model": translation.model,
                "chars": len(message.body),
            },
        )
    return translation


def back_translate(
    principal: Principal,
    text: str,
    translator: Translator,
    *,
    source: str,
    target: str,
    store_id: int | None = None,
    known: Mapping[str, str] | None = None,
) -> Translation:
    """A reply text (the draft, or the agent's edit) from the buyer's language `source` into `target`.

    Pass the conversation's `store_id` so store assignment is checked, and `known`
    (`{"buyer_name": ...}`) so the buyer's name in the greeting is masked too.
    """
    require(principal, Action.VIEW_QUEUE, store_id=store_id)
    _check_language(source, "source")
    _check_language(target, "target")
    return translator.translate(text, source=source, target=target, known=known)

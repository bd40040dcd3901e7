"""What the statistics record as it happens, because recomputing it on every load of the statistics page
would mean rebuilding months of threads and diffing months of drafts:

- on each buyer message, `answered_at` and `cleared_at`: the first reply and the first "no response
  needed" at or after it (definitions in `engine.services.stats`). `record_answers` sets them from a
  conversation's events; call it whenever a reply goes out, a conversation is marked "no response needed"
  or buyer messages are stored. It is idempotent, so calling it once too often costs a few reads.
- on each draft queued to send, `edit_distance` from the draft to the sent text (`sent_edit_distance`).

Migration 0005 filled both in for the rows that existed before.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, load_only

from engine.db.models import AuditEvent, Message, OutboxItem, OutboxState
from engine.workflow.textdiff import normalized_edit_distance

NO_RESPONSE_NEEDED_ACTION = "conversation.no_response_needed"
_CHUNK = 500  # conversations per IN list


def sent_edit_distance(drafted: str, sent: str) -> float:
    """Normalised edit distance from the draft to the sent text, ignoring outer whitespace (0 = unchanged)."""
    return normalized_edit_distance(drafted.strip(), sent.strip())


def first_at_or_after(moment: datetime, times: Sequence[datetime]) -> datetime | None:
    """The earliest of `times` (sorted) at or after `moment`: a reply at the same instant counts."""
    index = bisect_left(times, moment)
    return times[index] if index < len(times) else None


def record_answers(session: Session, conversation_ids: Iterable[int | None]) -> None:
    """Set `answered_at` and `cleared_at` of every buyer message in these conversations from their replies
    (outgoing messages, sent outbox items) and "no response needed" events; None ids are skipped."""
    wanted = sorted({conversation_id for conversation_id in conversation_ids if conversation_id is not None})
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        replies = _times_by_conversation(
            session,
            select(Message.conversation_id, Message.received_at).where(
                Message.conversation_id.in_(chunk), Message.direction == "out"
            ),
            select(OutboxItem.conversation_id, OutboxItem.sent_at).where(
                OutboxItem.conversation_id.in_(chunk),
                OutboxItem.state == OutboxState.SENT,
                OutboxItem.sent_at.is_not(None),
            ),
        )
        clearings = _times_by_conversation(
            session,
            select(AuditEvent.entity_id, AuditEvent.at).where(
                AuditEvent.entity == "conversation",
                AuditEvent.entity_id.in_(chunk),
                AuditEvent.action == NO_RESPONSE_NEEDED_ACTION,
            ),
        )
        buyer_messages = session.scalars(
            select(Message)
            .options(load_only(Message.conversation_id, Message.received_at, Message.answered_at, Message.cleared_at))
            .where(Message.conversation_id.in_(chunk), Message.direction == "in", Message.kind == "buyer_message")
        ).all()
        for message in buyer_messages:
            assert message.conversation_id is not None  # selected by it
            answered = first_at_or_after(message.received_at, replies.get(message.conversation_id, []))
            cleared = first_at_or_after(message.received_at, clearings.get(message.conversation_id, []))
            if (message.answered_at, message.cleared_at) != (answered, cleared):
                message.answered_at, message.cleared_at = answered, cleared


def _times_by_conversation(session: Session, *queries: Select[Any, Any]) -> dict[int, list[datetime]]:
    """(conversation id, time) rows of `queries` as sorted times per conversation."""
    times: defaultdict[int, list[datetime]] = defaultdict(list)
    for query in queries:
        for conversation_id, at in session.execute(query):
            times[conversation_id].append(at)
    for found in times.values():
        found.sort()
    return times

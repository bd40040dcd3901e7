"""The demo's thirty days of history, planned: which buyer messages arrive when, who answers, how fast, what
gets edited, rejected, blocked by the compliance check, thanked for or closed. Pure and seeded: the same
entries, stores, team and `now` give the same plan. `engine.demo.history` writes it to the database.

The buyer messages and drafts come from `knowledge/demo/history.jsonl` (see the README there).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from engine.errors import InputError
from engine.jsonl import read_records
from engine.taxonomy import INTENTS, MARKETPLACES
from engine.workflow.permissions import Role

HISTORY_FILE = "history.jsonl"
HISTORY_DAYS = 30
SEED = 14
# The live demo inbox fills the last 30 hours; history stops before it so every reply is in the past.
HISTORY_END = timedelta(hours=31)
_REQUIRED = ("marketplace", "language", "intent", "subject", "buyer")

# A line an over-eager draft adds, which the compliance gate blocks (contact details, review bait).
BLOCKED_LINES = {
    "en": "Call us any time on +1 206 555 0147.",
    "de": "Rufen Sie uns einfach an: +49 30 12345678.",
    "fr": "Plus d'infos : https://northwind-gear.example/aide",
    "es": "Escríbanos a soporte@northwind-gear.example.",
    "it": "Lasci una recensione a 5 stelle e le rimborsiamo la spedizione.",
    "ja": "お電話ください：03-1234-5678",
}
REJECT_REASONS = (  # the most common reason twice: it comes up twice as often
    "Wrong facts: the order has not shipped yet",
    "Promises a refund we do not give for this item",
    "Too generic, answer the buyer's actual question",
    "Wrong facts: the order has not shipped yet",
    "Tone too formal for this buyer",
)
BLOCKED_REASON = "Blocked by the compliance check: contact details or a review request"
# The sign-off an agent adds when a draft is right but impersonal.
PERSONAL_TOUCH = {
    "en": "\n\nHave a great day!",
    "de": "\n\nEinen schönen Tag noch!",
    "fr": "\n\nBonne journée !",
    "es": "\n\n¡Que tenga un buen día!",
    "it": "\n\nBuona giornata!",
    "ja": "\n\n今後ともよろしくお願いいたします。",
}
TAGS_BY_INTENT = {
    "damaged_defective": "replacement-sent",
    "complaint_feedback": "escalated",
    "invoice_vat": "b2b",
    "warranty": "warranty-claim",
}
PER_WEEKDAY = (12, 11, 11, 10, 10, 5, 4)  # conversations a day, Monday first: quieter at weekends


@dataclass(frozen=True)
class HistoryEntry:
    """One buyer message of the history file and the reply drafted for it (`draft` empty: nothing to say)."""

    marketplace: str
    language: str
    intent: str
    subject: str
    buyer: str
    draft: str = ""
    edited: str = ""  # how an agent improved the draft, when one did
    template: str | None = None


def read_history(path: Path) -> list[HistoryEntry]:
    """The entries of a history file; a bad line raises InputError naming it and what to fix."""
    if not path.is_file():
        raise InputError(f"{path} is missing: restore knowledge/demo/{HISTORY_FILE} from the repository.")
    entries = []
    with path.open(encoding="utf-8") as stream:
        for number, record in read_records(stream, required=_REQUIRED):
            if record["marketplace"] not in MARKETPLACES or record["intent"] not in INTENTS:
                raise InputError(
                    f"{path.name} line {number}: unknown marketplace or intent; use the ids of knowledge/taxonomy.json."
                )
            if any(not isinstance(record.get(key, ""), str) for key in ("draft", "edited", *_REQUIRED)):
                raise InputError(f"{path.name} line {number}: every field must be a string (template may be null).")
            if record["intent"] != "no_response_needed" and not record.get("draft"):
                raise InputError(f"{path.name} line {number}: a buyer message that needs a reply needs a 'draft'.")
            entries.append(
                HistoryEntry(**{key: record[key] for key in HistoryEntry.__dataclass_fields__ if key in record})
            )
    if not entries:
        raise InputError(f"{path} holds no entries: restore it from the repository.")
    return entries


# --- the plan: who wrote what when, and what the team did about it (pure, seeded) ----------------------------


@dataclass(frozen=True)
class Classified:
    score: float
    scores: dict[str, float]
    runner_up: str


@dataclass(frozen=True)
class PlannedReply:
    drafted: str
    final: str
    decided_at: datetime
    sent_at: datetime
    rejected: tuple[str, str, datetime] | None = None  # an earlier draft: its text, the reason, when
    blocked: bool = False  # a draft carried a line the compliance check blocks


@dataclass(frozen=True)
class PlannedExchange:
    """One buyer message and what the team did about it: a reply, or "no response needed" at `cleared_at`."""

    entry: HistoryEntry
    received: datetime
    classified: Classified
    reply: PlannedReply | None
    cleared_at: datetime | None


@dataclass(frozen=True)
class PlannedConversation:
    number: int
    store_id: int
    agent_id: int
    order_id: str | None
    buyer_address: str
    tags: tuple[str, ...]
    exchanges: tuple[PlannedExchange, ...]  # the opening message first
    closed_at: datetime | None

    @property
    def entry(self) -> HistoryEntry:
        return self.exchanges[0].entry

    @property
    def received(self) -> datetime:
        return self.exchanges[0].received

    @property
    def replies(self) -> list[PlannedReply]:
        return [exchange.reply for exchange in self.exchanges if exchange.reply]

    @property
    def handled_at(self) -> datetime:
        first = self.exchanges[0]
        return first.reply.decided_at if first.reply else first.cleared_at or first.received


@dataclass(frozen=True)
class TeamMember:
    id: int
    role: str
    languages: tuple[str, ...]
    store_ids: frozenset[int]


def plan_history(
    entries: Sequence[HistoryEntry],
    stores: Mapping[str, int],
    team: Sequence[TeamMember],
    *,
    now: datetime,
    seed: int = SEED,
) -> list[PlannedConversation]:
    """`HISTORY_DAYS` of conversations ending before `now`, for the entries whose marketplace has a store
    (`stores`: marketplace -> store id), each handled by a member of `team` allowed on its store."""
    usable = [entry for entry in entries if entry.marketplace in stores]
    if not usable or not team:
        return []
    rng = random.Random(seed)
    by_language: defaultdict[str, list[HistoryEntry]] = defaultdict(list)
    for entry in usable:
        by_language[entry.language].append(entry)
    end = now - HISTORY_END
    planned: list[PlannedConversation] = []
    for days_back in range(HISTORY_DAYS, 0, -1):
        day = (end - timedelta(days=days_back)).replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(PER_WEEKDAY[day.weekday()] + rng.randint(-2, 2)):
            received = day + timedelta(seconds=rng.randint(6 * 3600, 22 * 3600))
            entry = rng.choice(usable)
            store_id = stores[entry.marketplace]
            planned.append(
                _plan_one(rng, len(planned) + 1, entry, store_id, team, received, now, by_language[entry.language])
            )
    return planned


def _member_for(rng: random.Random, team: Sequence[TeamMember], store_id: int, language: str) -> TeamMember:
    allowed = [member for member in team if store_id in member.store_ids] or list(team)
    speakers = [m for m in allowed if language in m.languages and m.role != Role.ADMIN]
    return rng.choice(speakers or allowed)


def _plan_one(
    rng: random.Random,
    number: int,
    entry: HistoryEntry,
    store_id: int,
    team: Sequence[TeamMember],
    received: datetime,
    now: datetime,
    same_language: Sequence[HistoryEntry],
) -> PlannedConversation:
    order_id = _order_id(rng) if "{order}" in entry.buyer + entry.draft else None
    member = _member_for(rng, team, store_id, entry.language)
    relay = MARKETPLACES[entry.marketplace].relay
    tags = [tag for tag in (TAGS_BY_INTENT.get(entry.intent),) if tag]
    if entry.template and entry.template.endswith(".fba"):
        tags.append("fba")
    if rng.random() < 0.12:
        tags.append("repeat-buyer")
    exchanges = [_exchange(rng, entry, received, order_id)]
    closed = None
    reply = exchanges[0].reply
    if reply is not None:
        follow_up = _follow_up(rng, entry, reply.sent_at, order_id, now, same_language)
        if follow_up is not None:
            exchanges.append(follow_up)
        if exchanges[-1].reply is not None:
            closing = exchanges[-1].reply.sent_at + timedelta(days=rng.uniform(2, 5))
            closed = closing if closing < now and rng.random() < 0.7 else None
    return PlannedConversation(
        number=number,
        store_id=store_id,
        agent_id=member.id,
        order_id=order_id,
        buyer_address=f"{rng.getrandbits(60):015x}@{relay}",
        tags=tuple(tags),
        exchanges=tuple(exchanges),
        closed_at=closed,
    )


def _exchange(rng: random.Random, entry: HistoryEntry, received: datetime, order_id: str | None) -> PlannedExchange:
    classified = _classified(rng, entry.intent)
    decided = received + _response_delay(rng)
    if entry.intent == "no_response_needed" or not entry.draft:
        return PlannedExchange(entry, received, classified, None, decided)
    return PlannedExchange(entry, received, classified, _plan_reply(rng, entry, order_id, decided), None)


def _follow_up(
    rng: random.Random,
    entry: HistoryEntry,
    replied: datetime,
    order_id: str | None,
    now: datetime,
    same_language: Sequence[HistoryEntry],
) -> PlannedExchange | None:
    """The buyer's next message after our reply, if any: thanks (most often), the same question again (the
    reply did not help), or another question; answered or cleared like the first, and all before `now`."""
    received = replied + timedelta(hours=rng.uniform(2, 30))
    roll = rng.random()
    thanks = [e for e in same_language if e.intent == "no_response_needed"]
    again = [e for e in same_language if e.intent == entry.intent and e.draft and "{order}" in e.buyer]
    other = [e for e in same_language if e.intent not in (entry.intent, "no_response_needed") and e.draft]
    if roll < 0.28 and thanks:
        follow_up = _exchange(rng, rng.choice(thanks), received, order_id)
    elif roll < 0.33 and again:
        follow_up = _exchange(rng, rng.choice(again), received, order_id)
    elif roll < 0.38 and other:
        follow_up = _exchange(rng, rng.choice(other), received, order_id)
    else:
        return None
    handled = follow_up.reply.sent_at if follow_up.reply else follow_up.cleared_at
    return follow_up if handled is not None and handled < now - timedelta(minutes=30) else None


def _plan_reply(rng: random.Random, entry: HistoryEntry, order_id: str | None, decided: datetime) -> PlannedReply:
    """Sent as drafted, edited, regenerated after a rejection, or fixed after the gate blocked the draft."""
    drafted = final = _fill(entry.draft, order_id)
    touch = PERSONAL_TOUCH.get(entry.language, "")
    rejected = None
    blocking_line = BLOCKED_LINES.get(entry.language)
    rejected_at = decided - timedelta(minutes=rng.randint(5, 40))
    roll = rng.random()
    if roll < 0.07:
        rejected = (drafted, rng.choice(REJECT_REASONS), rejected_at)
        final = _fill(entry.edited or entry.draft, order_id) + touch
    elif roll < 0.10 and blocking_line:  # blocked, rejected, and the next draft sent
        rejected = (f"{drafted}\n\n{blocking_line}", BLOCKED_REASON, rejected_at)
    elif roll < 0.14 and blocking_line:  # blocked, and the agent deleted the line before sending
        drafted = f"{drafted}\n\n{blocking_line}"
    elif entry.edited and roll < 0.55:
        final = _fill(entry.edited, order_id)
    elif roll < 0.25:
        final = drafted + touch
    sent = decided + timedelta(seconds=rng.randint(20, 180))
    blocked = blocking_line is not None and 0.07 <= roll < 0.14
    return PlannedReply(drafted, final, decided, sent, rejected, blocked)


def _response_delay(rng: random.Random) -> timedelta:
    """How long a buyer waited: mostly within hours, sometimes overnight, now and then past Amazon's 24 h."""
    roll = rng.random()
    if roll < 0.70:
        hours = rng.uniform(0.2, 6)
    elif roll < 0.93:
        hours = rng.uniform(6, 20)
    elif roll < 0.97:
        hours = rng.uniform(20, 23.5)
    else:
        hours = rng.uniform(25, 30)
    return timedelta(seconds=round(hours * 3600))


def _classified(rng: random.Random, intent: str) -> Classified:
    """A plausible classification of a message whose intent is known: mostly confident, sometimes not."""
    score = round(rng.uniform(0.58, 0.97), 3)
    runner_up = rng.choice([other for other in INTENTS if other != intent])
    return Classified(score, {intent: score, runner_up: round((1 - score) * rng.uniform(0.5, 0.8), 3)}, runner_up)


def _fill(text: str, order_id: str | None) -> str:
    return text.replace("{order}", order_id or "")


def _order_id(rng: random.Random) -> str:
    return f"{rng.randint(100, 999)}-{rng.randint(0, 9_999_999):07d}-{rng.randint(0, 9_999_999):07d}"

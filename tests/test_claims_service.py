"""Claims in the database: one agent at a time acts on a conversation (SQLite and PostgreSQL), including two
agents racing for the same conversation in separate transactions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from engine.components import Components
from engine.db import Database
from engine.db.base import utcnow
from engine.db.models import Agent, AuditEvent, Conversation, Message, Store
from engine.errors import ConflictError, PermissionDenied, ReplyDeskError
from engine.services import conversations as actions
from engine.services.agents import NewPassword, create_agent, principal_for
from engine.services.claims import claim, claim_on_open, claim_state, current_claim, release
from engine.services.inbox import store_mail
from engine.services.pipeline import process_pending
from engine.services.stores import ensure_store
from engine.settings import Settings
from engine.setup import setup
from engine.workflow.claims import DEFAULT_CLAIM_TTL, Claim
from engine.workflow.permissions import Principal, Role
from tests.conftest import BACKENDS, REPO_ROOT
from tests.helpers import relay_mail

NOW = datetime(2026, 11, 20, 13, 55, tzinfo=UTC)


@dataclass
class Desk:
    store: Store
    conversation: Conversation
    mia: Principal
    noah: Principal
    lead: Principal


def _desk(session: Session, components: Components | None = None) -> Desk:
    store = ensure_store(session, "EU", sender_address="service@eu.example")
    store_mail(session, store, relay_mail(), source="test")
    if components is not None:
        process_pending(session, components)
    conversation = session.scalars(select(Conversation).where(Conversation.store_id == store.id)).one()
    mia, noah, lead = (_agent(session, name, role, store) for name, role in _PEOPLE)
    return Desk(store, conversation, mia, noah, lead)


_PEOPLE = (("Mia", Role.AGENT), ("Noah", Role.AGENT), ("Lee", Role.LEAD))


def _agent(session: Session, name: str, role: Role, store: Store) -> Principal:
    # No password: these agents never sign in, and hashing one per test would slow the suite down.
    agent = Agent(username=name.lower(), display_name=name, role=role, languages=[], intent_groups=[])
    agent.stores = [store]
    session.add(agent)
    session.flush()
    return principal_for(agent)


def test_a_free_conversation_is_claimed_and_a_colleague_is_told_who_and_until_when(session: Session) -> None:
    desk = _desk(session)
    taken = claim(session, desk.mia, desk.conversation.id, now=NOW)
    assert taken == Claim(desk.mia.agent_id, NOW + DEFAULT_CLAIM_TTL)
    assert current_claim(desk.conversation) == taken
    with pytest.raises(ConflictError) as refused:
        claim(session, desk.noah, desk.conversation.id, now=NOW + timedelta(minutes=1))
    assert str(refused.value) == "Conversation is being handled by Mia until 14:05 UTC — pick another one."
    assert current_claim(desk.conversation) == taken  # the refusal changed nothing


@pytest.mark.parametrize(
    ("second_after", "who", "wins"),
    [
        (timedelta(minutes=5), "mia", True),  # one's own claim is renewed
        (timedelta(minutes=5), "noah", False),  # a colleague's active claim blocks
        (DEFAULT_CLAIM_TTL, "noah", True),  # it lapses at its expiry exactly
        (timedelta(hours=2), "noah", True),  # a closed browser tab does not lock it for good
    ],
)
def test_claims_renew_block_and_lapse(session: Session, second_after: timedelta, who: str, wins: bool) -> None:
    desk = _desk(session)
    claim(session, desk.mia, desk.conversation.id, now=NOW)
    principal = desk.mia if who == "mia" else desk.noah
    later = NOW + second_after
    if wins:
        assert claim(session, principal, desk.conversation.id, now=later) == Claim(
            principal.agent_id, later + DEFAULT_CLAIM_TTL
        )
    else:
        with pytest.raises(ConflictError, match="handled by Mia"):
            claim(session, principal, desk.conversation.id, now=later)
        assert current_claim(desk.conversation) == Claim(desk.mia.agent_id, NOW + DEFAULT_CLAIM_TTL)


def test_claiming_needs_the_store(session: Session) -> None:
    desk = _desk(session)
    elsewhere = ensure_store(session, "US", region="na")
    outsider = principal_for(create_agent(session, "ola", password=NewPassword.of("correct horse"), stores=[elsewhere]))
    with pytest.raises(PermissionDenied):
        claim(session, outsider, desk.conversation.id, now=NOW)
    assert current_claim(desk.conversation) is None


def _draft_id(session: Session, desk: Desk) -> int:
    view = actions.get_conversation(session, desk.mia, desk.conversation.id)
    assert view.current_draft is not None
    return view.current_draft.id


def _message_id(session: Session, desk: Desk) -> int:
    return session.scalars(select(Message.id).where(Message.conversation_id == desk.conversation.id)).one()


Act = Callable[[Session, Principal, Desk], object]
ACTIONS: dict[str, Act] = {
    "approve": lambda s, p, d: actions.approve_draft(
        s, p, _draft_id(s, d), final_text="Hello Jonas, your parcel is on its way and will arrive soon."
    ),
    "reject": lambda s, p, d: actions.reject_draft(s, p, _draft_id(s, d), "Wrong tone"),
    "no_response_needed": lambda s, p, d: actions.mark_no_response_needed(s, p, d.conversation.id),
    "hold": lambda s, p, d: actions.hold(s, p, d.conversation.id),
    "reopen": lambda s, p, d: actions.reopen(s, p, d.conversation.id),
    "note": lambda s, p, d: actions.add_note(s, p, d.conversation.id, "Called the carrier."),
    "correct_intent": lambda s, p, d: actions.correct_intent(s, p, _message_id(s, d), "damaged_defective"),
    "assign": lambda s, p, d: actions.assign(s, p, d.conversation.id, p.agent_id),
}
# What each action leaves behind: done with the conversation (claim released) or still on it (claim kept).
RELEASES = {"approve", "no_response_needed"}


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_an_action_is_refused_while_a_colleague_holds_the_conversation(
    session: Session, fake_components: Components, name: str
) -> None:
    desk = _desk(session, fake_components)
    claim(session, desk.mia, desk.conversation.id, now=utcnow())
    audit_before = session.scalars(select(AuditEvent.id)).all()
    with pytest.raises(ConflictError, match=r"being handled by Mia until .* pick another one"):
        ACTIONS[name](session, desk.noah, desk)
    assert session.scalars(select(AuditEvent.id)).all() == audit_before
    assert current_claim(desk.conversation) is not None
    assert current_claim(desk.conversation).agent_id == desk.mia.agent_id  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_acting_takes_the_claim_and_finishing_releases_it(
    session: Session, fake_components: Components, name: str
) -> None:
    desk = _desk(session, fake_components)
    before = utcnow()
    ACTIONS[name](session, desk.noah, desk)
    held = current_claim(desk.conversation)
    if name in RELEASES:
        assert held is None
    else:
        assert held is not None and held.agent_id == desk.noah.agent_id
        assert before + DEFAULT_CLAIM_TTL <= held.expires_at <= utcnow() + DEFAULT_CLAIM_TTL


def test_close_releases_the_claim(session: Session, fake_components: Components) -> None:
    desk = _desk(session, fake_components)
    actions.mark_no_response_needed(session, desk.noah, desk.conversation.id)
    claim(session, desk.noah, desk.conversation.id, now=utcnow())
    actions.close(session, desk.noah, desk.conversation.id)
    assert current_claim(desk.conversation) is None
    # Once released, a colleague may act at once.
    actions.reopen(session, desk.mia, desk.conversation.id)
    assert current_claim(desk.conversation).agent_id == desk.mia.agent_id  # type: ignore[union-attr]


def test_release_by_holder_lead_and_colleague(session: Session) -> None:
    desk = _desk(session)
    claim(session, desk.mia, desk.conversation.id, now=NOW)
    with pytest.raises(ConflictError, match="Only its holder, a lead or an admin can release it"):
        release(session, desk.noah, desk.conversation.id, now=NOW)
    release(session, desk.mia, desk.conversation.id, now=NOW)
    assert current_claim(desk.conversation) is None
    release(session, desk.mia, desk.conversation.id, now=NOW)  # releasing a free conversation is harmless

    claim(session, desk.mia, desk.conversation.id, now=NOW)
    release(session, desk.lead, desk.conversation.id, now=NOW)
    assert current_claim(desk.conversation) is None
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "conversation.release")).one()
    assert (event.actor_id, event.before) == (
        desk.lead.agent_id,
        {"claimed_by_id": desk.mia.agent_id, "claim_expires_at": (NOW + DEFAULT_CLAIM_TTL).isoformat()},
    )

    claim(session, desk.mia, desk.conversation.id, now=NOW)
    release(session, desk.noah, desk.conversation.id, now=NOW + DEFAULT_CLAIM_TTL)  # lapsed: anyone may
    assert current_claim(desk.conversation) is None


def test_the_page_view_of_a_claim(session: Session) -> None:
    desk = _desk(session)
    mine = claim_on_open(session, desk.mia, desk.conversation.id, now=NOW)
    assert (mine.mine, mine.holder, mine.until, mine.taken_by_other) == (True, "Mia", "14:05 UTC", False)
    theirs = claim_on_open(session, desk.noah, desk.conversation.id, now=NOW)
    assert (theirs.mine, theirs.holder, theirs.taken_by_other) == (False, "Mia", True)
    assert theirs.expires_at == NOW + DEFAULT_CLAIM_TTL
    tomorrow = claim_state(session, desk.noah, desk.conversation.id, now=NOW - timedelta(days=1))
    assert tomorrow.until == "2026-11-20 14:05 UTC"  # not today: the date is shown too
    release(session, desk.mia, desk.conversation.id, now=NOW)
    free = claim_state(session, desk.mia, desk.conversation.id, now=NOW)
    assert (free.mine, free.holder, free.until, free.taken_by_other) == (False, None, "", False)


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_two_agents_racing_for_one_conversation_cannot_both_win(fresh_database: Database) -> None:
    db = fresh_database
    with db.transaction() as session:
        desk = _desk(session)
        conversation_id, racers = desk.conversation.id, [desk.mia, desk.noah]
    start = threading.Barrier(len(racers))
    outcomes: dict[int, str] = {}

    def race(principal: Principal) -> None:
        start.wait()
        try:
            with db.transaction() as session:
                claim(session, principal, conversation_id, now=utcnow())
                # Hold the transaction open: without the row lock the other racer would read the
                # conversation as free meanwhile and win too.
                time.sleep(0.3)
            outcomes[principal.agent_id] = "won"
        except ReplyDeskError as exc:
            outcomes[principal.agent_id] = type(exc).__name__

    threads = [threading.Thread(target=race, args=(p,)) for p in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes.values()) == ["ConflictError", "won"]
    winner = next(agent_id for agent_id, outcome in outcomes.items() if outcome == "won")
    with db.transaction() as session:
        stored = current_claim(session.get_one(Conversation, conversation_id))
        assert stored is not None and stored.agent_id == winner


# --- the conversation page ---------------------------------------------------------------------------------


@pytest.fixture
def claimed_app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Database, int]]:
    """A small database of its own for the app: a conversation with a draft, claimed by Mia."""
    db = Database(settings.resolved_database_url)
    db.migrate()
    with db.transaction() as session:
        store = ensure_store(session, "EU", sender_address="service@eu.example")
        store_mail(session, store, relay_mail(), source="test")
        for username, name in (("mia", "Mia"), ("noah", "Noah")):
            create_agent(session, username, password=NewPassword.of("correct horse"), display_name=name, stores=[store])
    for _line in setup(settings):  # models and index for the app, and the draft
        pass
    with db.transaction() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.drafts
        mia = principal_for(session.scalars(select(Agent).where(Agent.username == "mia")).one())
        claim(session, mia, conversation.id, now=utcnow())
        conversation_id = conversation.id
    monkeypatch.setenv("REPLYDESK_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("REPLYDESK_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("REPLYDESK_NLP", "fake")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    yield db, conversation_id
    db.dispose()


def _open_as(username: str, conversation_id: int) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=60).run()
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input("correct horse")
    at.form_submit_button[0].click().run()
    at.button(key=f"open_{conversation_id}").click().run()
    assert not at.exception, at.exception
    return at


def test_the_page_shows_a_colleagues_claim_and_disables_the_actions(claimed_app: tuple[Database, int]) -> None:
    db, conversation_id = claimed_app
    noah = _open_as("noah", conversation_id)
    assert any(w.value.startswith("Mia is handling this conversation until ") for w in noah.warning)
    assert noah.button(key="send").disabled
    assert all(b.disabled for b in noah.button if b.label in ("No response needed", "Hold", "Close"))
    with db.transaction() as session:
        held = current_claim(session.get_one(Conversation, conversation_id))
        assert held is not None and held.agent_id == _id(session, "mia")  # opening did not take it over

    mia = _open_as("mia", conversation_id)  # the holder renews her claim and may act
    assert not mia.warning and not mia.button(key="send").disabled
    mia.button(key="release").click().run()
    assert any("Released" in s.value for s in mia.success)
    assert any(b.key == "take" for b in mia.button)  # not claimed again behind her back
    with db.transaction() as session:
        assert current_claim(session.get_one(Conversation, conversation_id)) is None


def _id(session: Session, username: str) -> int:
    return session.scalars(select(Agent.id).where(Agent.username == username)).one()

"""Webhooks end to end: events written with their changes, delivered by the worker's pass to a real receiver
on loopback that verifies each signature independently, retried after the receiver was down, given up and
disabled after a day of failures, replayed by hand."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.compliance import check_reply
from engine.db import Database
from engine.db.models import Agent, Conversation, Mailbox, Message, WebhookDelivery, WebhookEndpoint, WebhookEvent
from engine.drafting.protocols import DraftResult
from engine.errors import SendError
from engine.integrations.delivery import deliver_due, retry_delay, webhook_pass
from engine.integrations.events import EVENT_TYPES, emit, emit_sla_events
from engine.integrations.webhooks import add_endpoint, deliveries, replay_delivery, set_active, sign
from engine.send.smtp import FakeSender
from engine.send.worker import send_pending
from engine.services import conversations
from engine.services.health import health
from engine.services.inbox import store_mail
from engine.services.pipeline import DraftOutcome, draft_job, store_draft
from engine.settings import Settings
from engine.sync import FakeMailServer, FakeSource
from engine.sync.runner import sync_mailbox
from engine.workflow.permissions import Principal, Role
from tests.conftest import BACKENDS
from tests.servers import GOOD_REPLY, THREAD_MAIL, free_port, make_mailbox, queue_reply, with_message_id
from tests.webhook_receiver import Receiver, SignatureError, verify

BLOCKED_REPLY = "Please leave us a positive review and write to me at seller.direct@gmail.com for a discount."


@pytest.fixture
def receiver() -> Receiver:
    server = Receiver(free_port()).start()
    yield server
    server.stop()


def test_signature_matches_the_specification_test_vector() -> None:
    # The example from the Standard Webhooks specification's reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330"}
    assert verify(secret, {**headers, "webhook-signature": signature}, body, now=1614265330) == {"test": 2432232314}
    with pytest.raises(SignatureError):
        verify(secret, {**headers, "webhook-signature": signature}, body + b" ", now=1614265330)


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [(1, 15, 30), (2, 30, 60), (5, 240, 480), (12, 3 * 3600, 6 * 3600), (40, 3 * 3600, 6 * 3600)],
)
def test_retry_delay_grows_exponentially_with_jitter_and_a_cap(attempts: int, low: int, high: int) -> None:
    import random

    delays = [retry_delay(attempts, random.Random(seed)).total_seconds() for seed in range(20)]
    assert all(low <= d <= high for d in delays)
    assert len(set(delays)) > 1  # jitter


def _admin(db: Database) -> Principal:
    with db.transaction() as session:
        agent = Agent(username="hook-admin", display_name="Admin", role=Role.ADMIN, languages=[], intent_groups=[])
        session.add(agent)
        session.flush()
        return Principal(agent.id, Role.ADMIN, frozenset())


def _outcome(conversation: Conversation, message: Message, text: str) -> DraftOutcome:
    return DraftOutcome(
        job=draft_job(conversation, message),
        language="de",
        intent="return_refund",
        result=DraftResult(text=text, action="reply", drafter="test"),
        verdict=check_reply(text),
        order_context=None,
        order_context_status="",
    )


def _send(db: Database, settings: Settings, sender: FakeSender) -> None:
    imap = FakeMailServer()
    imap.folder("Sent")
    send_pending(db, settings, sender_factory=lambda _config: sender, sent_folder_checker=lambda _c: FakeSource(imap))


def _drain(db: Database, settings: Settings) -> None:
    for _ in range(10):
        if not deliver_due(db, settings).results:
            return


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_every_event_type_reaches_the_receiver_once_per_occurrence(
    fresh_database: Database, settings: Settings, receiver: Receiver
) -> None:
    db = fresh_database
    admin = _admin(db)
    mailbox_id = make_mailbox(db, settings)  # its IMAP side points at a closed port: the sync fails
    with db.transaction() as session:
        session.get_one(Mailbox, mailbox_id).smtp_host = "smtp.fake"
        _endpoint, secret = add_endpoint(session, settings, admin, receiver.url, ["all"], include_text=True)

    with db.transaction() as session:  # a buyer writes; drafting blocks one draft and readies the next
        mailbox = session.get_one(Mailbox, mailbox_id)
        stored = store_mail(session, mailbox.store, THREAD_MAIL.read_bytes(), source="test", mailbox_id=mailbox_id)
        message = session.get_one(Message, stored.message_row_id)
        conversation = session.get_one(Conversation, message.conversation_id)
        store_draft(session, conversation, _outcome(conversation, message, BLOCKED_REPLY))
        draft = store_draft(session, conversation, _outcome(conversation, message, GOOD_REPLY))
        deadline = datetime.now(UTC) + timedelta(hours=3)
        conversation.amazon_deadline = deadline
        conversation_id = conversation.id
    for now in (deadline - timedelta(hours=1), deadline - timedelta(minutes=30), deadline + timedelta(minutes=1)) * 2:
        with db.transaction() as session:  # each SLA event fires once, however many passes see it
            emit_sla_events(session, now=now, at_risk_lead=timedelta(hours=2))
    with db.transaction() as session:
        session.get_one(Conversation, conversation_id).amazon_deadline = deadline
        conversations.approve_draft(session, admin, draft.id)
    _send(db, settings, FakeSender())
    with db.transaction() as session:
        conversations.close(session, admin, conversation_id)
    queue_reply(db, mailbox_id, buyer_message_id="second@eu-west-1.amazonses.com")  # a second buyer message
    _send(db, settings, FakeSender(outcomes=[SendError("Mailbox unavailable.", permanent=True)]))
    for _ in range(2):  # one event per outage, not one per failed sync
        sync_mailbox(db, mailbox_id, settings)

    _drain(db, settings)

    payloads = receiver.verified(secret)
    counts = Counter(p["type"] for p in payloads)
    assert counts == {
        "message.received": 2,
        "draft.blocked": 1,
        "draft.ready": 1,
        "sla.at_risk": 1,
        "sla.breached": 1,
        "reply.approved": 1,
        "reply.sent": 1,
        "conversation.closed": 1,
        "reply.failed": 1,
        "mailbox.sync_failed": 1,
    }
    assert set(counts) == set(EVENT_TYPES)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == len(set(ids))  # no event delivered twice
    received = next(p for p in payloads if p["type"] == "message.received")
    assert received["version"] == 1
    assert received["data"]["conversation_id"] == conversation_id
    assert received["data"]["store"] == "Northwind Gear"
    assert received["data"]["text"]  # this endpoint opted in to texts
    blocked = next(p for p in payloads if p["type"] == "draft.blocked")
    assert blocked["data"]["rules"]
    with db.read() as session:
        assert {d.state for d in session.scalars(select(WebhookDelivery))} == {"delivered"}
        assert {d.last_status for d in session.scalars(select(WebhookDelivery))} == {200}


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_texts_reach_only_endpoints_that_opted_in_and_stores_filter(
    fresh_database: Database, settings: Settings, receiver: Receiver
) -> None:
    db = fresh_database
    other = Receiver(free_port()).start()
    try:
        mailbox_id = make_mailbox(db, settings)
        make_mailbox(db, settings, store="Other Store", name="other")
        with db.transaction() as session:
            _e, with_text = add_endpoint(session, settings, None, receiver.url, ["message.received"], include_text=True)
            _e, without = add_endpoint(
                session, settings, None, other.url, ["message.received"], store_names=["Other Store"]
            )
            add_endpoint(session, settings, None, other.url, ["reply.sent"])  # subscribed to another event only
            mailbox = session.get_one(Mailbox, mailbox_id)
            store_mail(session, mailbox.store, THREAD_MAIL.read_bytes(), source="test", mailbox_id=mailbox_id)
        _drain(db, settings)
        assert [p["data"].get("text") is not None for p in receiver.verified(with_text)] == [True]
        assert other.received == []  # Northwind Gear's message is not for the Other Store endpoint
        with db.transaction() as session:
            other_box = session.scalar(select(Mailbox).where(Mailbox.name == "other"))
            assert other_box is not None
            raw = with_message_id(THREAD_MAIL.read_bytes(), "other@eu-west-1.amazonses.com")
            store_mail(session, other_box.store, raw, source="test", mailbox_id=other_box.id)
        _drain(db, settings)
        assert ["text" in p["data"] for p in other.verified(without)] == [False]
    finally:
        other.stop()


def _emit(db: Database, n: int) -> list[int]:
    with db.transaction() as session:
        return [emit(session, "mailbox.sync_failed", {"n": i}, store_id=None).id for i in range(n)]


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_deliveries_missed_while_the_receiver_was_down_arrive_afterwards(
    fresh_database: Database, settings: Settings
) -> None:
    db = fresh_database
    receiver = Receiver(free_port())  # not started: the port refuses connections
    with db.transaction() as session:
        _endpoint, secret = add_endpoint(session, settings, None, receiver.url, ["mailbox.sync_failed"])
    event_ids = _emit(db, 3)
    start = datetime.now(UTC)

    down = deliver_due(db, settings, now=start)
    assert [error is not None for _id, _status, error in down.results] == [True]  # the others wait with it
    with db.read() as session:
        rows = list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
        assert [r.state for r in rows] == ["pending"] * 3
        assert [r.attempts for r in rows] == [1, 0, 0]
        assert all(r.next_attempt_at is not None and r.next_attempt_at > start for r in rows)
        assert rows[0].last_error and "Connect" in rows[0].last_error
        endpoint = session.scalars(select(WebhookEndpoint)).one()
        assert endpoint.failing_since == start and endpoint.active
    assert deliver_due(db, settings, now=start + timedelta(seconds=5)).results == []  # backing off

    receiver.start()
    try:
        webhook_pass(db, settings, now=start + timedelta(minutes=10))
        payloads = receiver.verified(secret)
        assert [p["data"]["n"] for p in payloads] == [0, 1, 2]  # in order, each once
        assert [r.headers["webhook-id"] for r in receiver.received] == [f"msg_{i}" for i in event_ids]
        with db.read() as session:
            assert session.scalars(select(WebhookEndpoint)).one().failing_since is None
            log = deliveries(session, session.scalars(select(WebhookEndpoint.id)).one())
            assert [(row.state, row.last_status) for row in log] == [("delivered", 200)] * 3
    finally:
        receiver.stop()


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_day_of_failures_gives_up_disables_alerts_and_replay_delivers(
    fresh_database: Database, settings: Settings, receiver: Receiver
) -> None:
    db = fresh_database
    admin = _admin(db)
    receiver.status = 500
    with db.transaction() as session:
        endpoint, secret = add_endpoint(session, settings, admin, receiver.url, ["mailbox.sync_failed"])
        endpoint_id = endpoint.id
    _emit(db, 1)
    start = datetime.now(UTC)
    clock = start
    while clock < start + timedelta(hours=36):
        deliver_due(db, settings, now=clock)
        clock += timedelta(hours=1)
    assert 10 <= len(receiver.received) <= 20  # backed off, not once per pass
    with db.read() as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert (delivery.state, delivery.last_status) == ("failed", 500)
        delivery_id = delivery.id
        endpoint = session.get_one(WebhookEndpoint, endpoint_id)
        assert not endpoint.active and endpoint.disabled_reason and "enable" in endpoint.disabled_reason
        alerts = health(session, admin, now=clock).alerts
        assert [(a.code, a.subject) for a in alerts if a.code == "webhook_disabled"] == [
            ("webhook_disabled", receiver.url)
        ]
        lead = Principal(admin.agent_id, Role.LEAD, frozenset())
        assert not [a for a in health(session, lead, now=clock).alerts if a.code == "webhook_disabled"]
    _emit(db, 1)  # while disabled, no delivery is queued for it
    receiver.status = 200
    received_before = len(receiver.received)
    with db.transaction() as session:
        set_active(session, admin, endpoint_id, True)
        replay_delivery(session, admin, delivery_id)
    deliver_due(db, settings)
    assert len(receiver.verified(secret)) == received_before + 1
    with db.read() as session:
        assert session.get_one(WebhookDelivery, delivery_id).state == "delivered"
        assert session.scalar(select(WebhookEvent.id).order_by(WebhookEvent.id.desc()).limit(1)) is not None


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_webhook_test_and_the_command_line(
    fresh_database: Database,
    settings: Settings,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from engine.cli import main

    monkeypatch.setenv("REPLYDESK_DATABASE_URL", fresh_database.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("REPLYDESK_DATA_DIR", str(settings.data_dir))
    assert main(["webhook-add", receiver.url, "--events", "reply.sent,reply.failed"]) == 0
    out = capsys.readouterr().out
    secret = next(word for word in out.split() if word.startswith("whsec_"))
    assert main(["webhook-list"]) == 0
    assert receiver.url in capsys.readouterr().out
    assert main(["webhook-test", "1"]) == 0
    assert "HTTP 200" in capsys.readouterr().out
    [payload] = receiver.verified(secret)
    assert payload["type"] == "webhook.test"
    assert main(["webhook-add", receiver.url, "--events", "reply.nonsense"]) == 2
    assert "Choose from" in capsys.readouterr().err
    receiver.stop()
    assert main(["webhook-test", "1"]) == 1
    assert "not delivered" in capsys.readouterr().err
    with fresh_database.read() as session:
        log = deliveries(session, 1)
    assert [(row.event_type, row.last_status, row.last_error is None) for row in log] == [
        ("webhook.test", None, False),  # newest first: the receiver was down
        ("webhook.test", 200, True),
    ]

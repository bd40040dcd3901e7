"""The fast version of the fault suite's corpus case (`make faults` runs the full one): a few hundred hostile
mails mixed with normal ones, synced through a real Dovecot into SQLite and PostgreSQL. No crash; every mail
ends up a message, an `unparsed` message or a quarantined mail (or a recognised duplicate), exactly once."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from engine.db import Database
from engine.db.models import Message, RawMail, SyncRun
from engine.settings import Settings
from engine.sync.runner import sync_mailbox
from evals.faults import hostile_accounting, mixed_mailbox
from evals.hostile_mail import KINDS, generate_corpus
from tests.conftest import BACKENDS
from tests.servers import DovecotServer, dovecot_fixture, make_mailbox, relay_mails  # noqa: F401

HOSTILE = 300
NORMAL = 100


@pytest.fixture(scope="module")
def mailbox_mails() -> list[bytes]:
    corpus = generate_corpus(HOSTILE, seed=7)
    assert set(Counter(m.kind for m in corpus)) == set(KINDS)  # every kind is in the fast corpus
    return mixed_mailbox([m.raw for m in corpus], relay_mails(NORMAL), seed=7)


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_hostile_mail_through_dovecot_never_stops_the_mailbox(
    fresh_database: Database, settings: Settings, dovecot: DovecotServer, mailbox_mails: list[bytes]
) -> None:
    settings = settings.with_overrides(sync_batch_size=50, backfill_days=0)
    user = dovecot.new_user()
    dovecot.append(user, mailbox_mails)
    mailbox_id = make_mailbox(fresh_database, settings, dovecot, user)

    summary = sync_mailbox(fresh_database, mailbox_id, settings)

    assert summary.status in ("ok", "partial") and summary.error_code is None, summary.line()
    assert summary.fetched == len(mailbox_mails) and summary.last_uid == len(mailbox_mails)
    accounting = hostile_accounting(fresh_database, mailbox_id, mailbox_mails)
    assert accounting.lost == 0 and accounting.uids_twice == 0 and accounting.running == 0, accounting
    assert summary.new + summary.unparsed == accounting.messages
    assert summary.duplicates == accounting.duplicates and summary.quarantined == accounting.quarantined
    with fresh_database.transaction() as session:
        normal = session.scalars(select(Message.kind).where(Message.mailbox_id == mailbox_id)).all()
        run = session.get_one(SyncRun, summary.run_id)
    assert normal.count("buyer_message") >= NORMAL  # the normal mails came through as buyer messages
    assert run.finished_at is not None and run.status == summary.status


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_mail_over_the_size_limit_is_fetched_in_part_from_dovecot(
    fresh_database: Database, settings: Settings, dovecot: DovecotServer
) -> None:
    raw = relay_mails(1)[0].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    huge = head + b"\r\n\r\n" + body + b"\r\n" + b"filler line of text\r\n" * 80_000  # about 1.7 MB
    user = dovecot.new_user()
    dovecot.append(user, [huge, relay_mails(1)[0]])
    settings = settings.with_overrides(max_mail_mb=1, backfill_days=0)
    mailbox_id = make_mailbox(fresh_database, settings, dovecot, user)

    summary = sync_mailbox(fresh_database, mailbox_id, settings)

    assert (summary.status, summary.new, summary.last_uid) == ("ok", 2, 2)
    with fresh_database.transaction() as session:
        big, small = session.scalars(select(Message).where(Message.mailbox_id == mailbox_id).order_by(Message.id)).all()
        assert any("more than the 1 MB limit" in flag for flag in big.flags) and big.subject
        assert big.kind == "buyer_message" and small.kind == "buyer_message"
        kept = session.get_one(RawMail, big.raw_sha256)
        assert 64 * 1024 < kept.size < 400_000 and kept.content.startswith(head)

"""Sync over TLS for real: a Dovecot with a throwaway CA's certificate, IMAPS and STARTTLS with certificate
verification on; an untrusted certificate gives the coded TLS error on the mailbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.db import Database
from engine.db.models import Mailbox
from engine.settings import Settings
from engine.sync.runner import sync_mailbox
from tests.conftest import BACKENDS
from tests.servers import DovecotServer, dovecot_tls_fixture, make_mailbox, relay_mails  # noqa: F401
from tests.tls import ThrowawayCA


def _error(db: Database, mailbox_id: int) -> tuple[str | None, str | None]:
    with db.transaction() as session:
        mailbox = session.get_one(Mailbox, mailbox_id)
        return mailbox.last_error_code, mailbox.last_error


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_sync_over_tls_with_the_servers_ca(
    fresh_database: Database, settings: Settings, dovecot_tls: DovecotServer, security: str
) -> None:
    settings = settings.with_overrides(ca_file=dovecot_tls.ca_file)
    user = dovecot_tls.new_user()
    dovecot_tls.append(user, relay_mails(3))
    mailbox_id = make_mailbox(fresh_database, settings, dovecot_tls, user, imap_security=security)

    summary = sync_mailbox(fresh_database, mailbox_id, settings)

    assert (summary.status, summary.new, summary.last_uid) == ("ok", 3, 3)
    assert _error(fresh_database, mailbox_id) == (None, None)


@pytest.mark.parametrize("fresh_database", ["sqlite"], indirect=True)
@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_a_certificate_from_another_ca_is_refused_with_the_tls_error(
    fresh_database: Database, settings: Settings, dovecot_tls: DovecotServer, security: str, tmp_path: Path
) -> None:
    stranger = ThrowawayCA(tmp_path / "other-ca", common_name="Some other CA")
    settings = settings.with_overrides(ca_file=stranger.ca_file)
    user = dovecot_tls.new_user()
    dovecot_tls.append(user, relay_mails(1))
    mailbox_id = make_mailbox(fresh_database, settings, dovecot_tls, user, imap_security=security)

    summary = sync_mailbox(fresh_database, mailbox_id, settings)

    assert (summary.status, summary.error_code, summary.fetched) == ("error", "tls_failed", 0)
    code, message = _error(fresh_database, mailbox_id)
    assert code == "tls_failed" and message is not None
    assert "is not trusted" in message and "install its CA" in message
    assert summary.line().startswith(f"{user.name}: error")  # the stderr line names the mailbox


@pytest.mark.parametrize("fresh_database", ["sqlite"], indirect=True)
def test_without_the_ca_the_private_certificate_is_not_trusted(
    fresh_database: Database, settings: Settings, dovecot_tls: DovecotServer
) -> None:
    user = dovecot_tls.new_user()
    mailbox_id = make_mailbox(fresh_database, settings, dovecot_tls, user, imap_security="ssl")
    summary = sync_mailbox(fresh_database, mailbox_id, settings.with_overrides(ca_file=None))
    assert summary.error_code == "tls_failed"


@pytest.mark.parametrize("fresh_database", ["sqlite"], indirect=True)
def test_an_unreadable_ca_file_says_which_setting_to_fix(
    fresh_database: Database, settings: Settings, dovecot_tls: DovecotServer, tmp_path: Path
) -> None:
    bad = tmp_path / "not-a-certificate.pem"
    bad.write_text("hello")
    user = dovecot_tls.new_user()
    mailbox_id = make_mailbox(fresh_database, settings, dovecot_tls, user, imap_security="ssl")
    summary = sync_mailbox(fresh_database, mailbox_id, settings.with_overrides(ca_file=bad))
    code, message = _error(fresh_database, mailbox_id)
    assert summary.error_code == code == "tls_failed"
    assert message is not None and "REPLYDESK_CA_FILE" in message

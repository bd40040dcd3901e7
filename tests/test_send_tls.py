"""SMTP STARTTLS with certificate verification on, against aiosmtpd with a throwaway CA."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from engine.db import Database
from engine.db.models import OutboxItem, OutboxState
from engine.errors import ConfigError, SendError
from engine.send.smtp import SmtpConfig, SmtpSender, build_reply_message
from engine.send.worker import send_pending
from engine.settings import Settings
from tests.conftest import BACKENDS
from tests.servers import BUYER_ALIAS, SmtpCapture, make_mailbox, queue_reply, smtp_server
from tests.tls import ThrowawayCA

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SENDER = "service@northwind-gear.example"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tls_server(ca: ThrowawayCA) -> Iterator[SmtpCapture]:
    with smtp_server(tls=ca.issue("smtp")) as capture:
        yield capture


def _message() -> EmailMessage:
    return build_reply_message(
        from_address=SENDER,
        to_address=BUYER_ALIAS,
        subject="Re: Rücksendung",
        body="Hallo",
        message_id="r.1@northwind-gear.example",
        in_reply_to=None,
        references=(),
        date=NOW,
    )


def _send(capture: SmtpCapture, ca_file: Path | None, host: str = "127.0.0.1") -> None:
    config = SmtpConfig(host, capture.port, "starttls", "seller", "secret", timeout=10, ca_file=ca_file)
    SmtpSender(config).send(_message(), sender=SENDER, recipient=BUYER_ALIAS)


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_reply_goes_out_over_verified_starttls(
    fresh_database: Database, settings: Settings, ca: ThrowawayCA, tls_server: SmtpCapture
) -> None:
    settings = settings.with_overrides(ca_file=ca.ca_file)
    mailbox_id = make_mailbox(fresh_database, settings, smtp=tls_server, smtp_security="starttls")
    item_id = queue_reply(fresh_database, mailbox_id)

    assert send_pending(fresh_database, settings, now=lambda: NOW).sent == 1
    assert len(tls_server.received) == 1 and tls_server.logins == ["nobody"]  # logged in only after STARTTLS
    with fresh_database.transaction() as session:
        assert session.get_one(OutboxItem, item_id).state == OutboxState.SENT


def test_a_certificate_from_another_ca_is_refused_with_a_clear_error(tmp_path: Path, ca: ThrowawayCA) -> None:
    stranger = ThrowawayCA(tmp_path / "stranger", common_name="Someone else's CA")
    with smtp_server(tls=stranger.issue("smtp")) as capture:
        with pytest.raises(SendError) as caught:
            _send(capture, ca.ca_file)
        assert capture.received == [] and capture.logins == []
    assert caught.value.code == "smtp_tls_untrusted" and not caught.value.permanent
    assert "not trusted" in str(caught.value) and "REPLYDESK_CA_FILE" in str(caught.value)


def test_without_the_ca_file_the_private_certificate_is_not_trusted(tls_server: SmtpCapture) -> None:
    with pytest.raises(SendError) as caught:
        _send(tls_server, None)
    assert caught.value.code == "smtp_tls_untrusted" and tls_server.received == []


def test_a_certificate_for_another_host_name_is_refused(tmp_path: Path, ca: ThrowawayCA) -> None:
    with smtp_server(tls=ca.issue("elsewhere", hosts=("mail.elsewhere.example",))) as capture:
        with pytest.raises(SendError) as caught:
            _send(capture, ca.ca_file)
        assert capture.received == []
    assert caught.value.code == "smtp_tls_untrusted" and "mismatch" in str(caught.value).lower()


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_a_wrong_certificate_leaves_the_reply_failed_for_retry_with_the_reason(
    fresh_database: Database, settings: Settings, tmp_path: Path, ca: ThrowawayCA
) -> None:
    stranger = ThrowawayCA(tmp_path / "stranger", common_name="Someone else's CA")
    settings = settings.with_overrides(ca_file=ca.ca_file)
    with smtp_server(tls=stranger.issue("smtp")) as capture:
        mailbox_id = make_mailbox(fresh_database, settings, smtp=capture, smtp_security="starttls")
        item_id = queue_reply(fresh_database, mailbox_id)
        assert send_pending(fresh_database, settings, now=lambda: NOW).retrying == 1
        assert capture.received == []
    with fresh_database.transaction() as session:
        item = session.get_one(OutboxItem, item_id)
        assert item.state == OutboxState.FAILED and item.next_attempt_at is not None
        assert item.last_error and "certificate" in item.last_error and "not trusted" in item.last_error


def test_starttls_required_but_not_offered_is_a_tls_error(smtp_server_plain: SmtpCapture) -> None:
    with pytest.raises(SendError) as caught:
        _send(smtp_server_plain, None)
    assert caught.value.code == "smtp_tls" and "does not offer STARTTLS" in str(caught.value)


@pytest.fixture
def smtp_server_plain() -> Iterator[SmtpCapture]:
    with smtp_server() as capture:
        yield capture


def test_ca_file_setting(tmp_path: Path, ca: ThrowawayCA) -> None:
    assert Settings.from_env({"REPLYDESK_CA_FILE": str(ca.ca_file)}, env_file=tmp_path / "none").ca_file == ca.ca_file
    assert Settings.from_env({}, env_file=tmp_path / "none").ca_file is None
    with pytest.raises(ConfigError, match="not a file"):
        Settings.from_env({"REPLYDESK_CA_FILE": str(tmp_path / "missing.pem")}, env_file=tmp_path / "none")


def test_an_unreadable_ca_file_is_a_clear_error(tmp_path: Path, tls_server: SmtpCapture) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    with pytest.raises(SendError) as caught:
        _send(tls_server, broken)
    assert caught.value.code == "smtp_tls" and "REPLYDESK_CA_FILE" in str(caught.value)

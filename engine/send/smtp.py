"""Sending one reply over SMTP (stdlib `smtplib`), and a recording stand-in for tests.

The sender tells three outcomes apart, because only one of them may be retried blindly:
- the server refused the mail (`SendError`, `permanent` for 5xx, temporary for 4xx and for failures
  before the mail was handed over: connection, TLS, login);
- the server accepted it (no exception);
- the connection broke after the mail's last byte was sent but before the server answered
  (`SendOutcomeUnknown`): it may have been delivered, so it must not simply be sent again.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

from engine.errors import SendError

__all__ = [
    "FakeSender",
    "MailSender",
    "SendOutcomeUnknown",
    "SmtpConfig",
    "SmtpSender",
    "bracketed",
    "build_reply_message",
]

SECURITY_MODES = ("ssl", "starttls", "none")
_LINE_START_DOT = re.compile(rb"(?m)^\.")


class SendOutcomeUnknown(SendError):
    """The mail was handed over but the server's answer never came: it may or may not have been delivered."""

    code = "smtp_outcome_unknown"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # ssl, starttls, none
    username: str | None
    password: str = field(repr=False, default="")
    timeout: float = 30.0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class MailSender(Protocol):
    def send(self, message: EmailMessage, *, sender: str, recipient: str) -> None:
        """Deliver `message` to `recipient`, or raise `SendError` / `SendOutcomeUnknown`."""
        ...


def bracketed(message_id: str) -> str:
    return f"<{message_id.strip().strip('<>')}>"


def build_reply_message(
    *,
    from_address: str,
    to_address: str,
    subject: str,
    body: str,
    message_id: str,
    in_reply_to: str | None,
    references: Sequence[str],
    date: datetime,
) -> EmailMessage:
    """A plain UTF-8 text mail (quoted-printable: safe through any relay), threaded to the buyer's mail."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = from_address
    message["To"] = to_address  # the exact relay alias, `+suffix` included
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = bracketed(message_id)
    if in_reply_to:
        message["In-Reply-To"] = bracketed(in_reply_to)
    refs = [bracketed(r) for r in references if r]
    if in_reply_to and bracketed(in_reply_to) not in refs:
        refs.append(bracketed(in_reply_to))
    if refs:
        message["References"] = " ".join(refs)
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    return message


def _refused(code: int, reply: bytes, what: str, where: str) -> SendError:
    text = reply.decode("utf-8", "replace").strip()
    if 500 <= code < 600:
        return SendError(
            f"The mail server {where} refused the {what} for good: {code} {text}. The reply was not sent; "
            "correct the cause (address, sender approval, content) and approve it again.",
            permanent=True,
            code="smtp_rejected",
        )
    return SendError(
        f"The mail server {where} deferred the {what}: {code} {text}. It will be retried automatically.",
        code="smtp_deferred",
    )


class SmtpSender:
    """`MailSender` over `smtplib`: one connection per reply (replies are few and must be exact)."""

    def __init__(self, config: SmtpConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        if config.security not in SECURITY_MODES:
            raise SendError(f"Unknown SMTP security {config.security!r}: use ssl, starttls or none.", permanent=True)
        self.config = config
        self._ssl_context = ssl_context or ssl.create_default_context()

    def _connect(self, local_hostname: str) -> smtplib.SMTP:
        cfg = self.config
        try:
            if cfg.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, local_hostname=local_hostname, timeout=cfg.timeout, context=self._ssl_context
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, local_hostname=local_hostname, timeout=cfg.timeout)
            conn.ehlo()
            if cfg.security == "starttls":
                if not conn.has_extn("starttls"):
                    conn.close()
                    raise SendError(
                        f"{cfg.where} does not offer STARTTLS. Use SMTP security ssl (port 465) or fix the port.",
                        code="smtp_tls",
                    )
                conn.starttls(context=self._ssl_context)
                conn.ehlo()
            if cfg.username and cfg.password and conn.has_extn("auth"):
                conn.login(cfg.username, cfg.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(
                f"The SMTP server {cfg.where} refused the login for {cfg.username} ({exc.smtp_code}). Re-enter "
                "the password (or a new app password) under Settings → Mailboxes; the reply will be retried.",
                code="smtp_auth",
            ) from None
        except ssl.SSLError as exc:
            raise SendError(
                f"The TLS handshake with {cfg.where} failed ({exc.reason or exc}). Check the SMTP security setting: "
                "ssl goes with port 465, starttls with 587.",
                code="smtp_tls",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(
                f"Cannot reach the SMTP server {cfg.where} ({exc}). The reply will be retried; check the host and "
                "port if this persists.",
                code="smtp_unreachable",
            ) from None
        return conn

    def send(self, message: EmailMessage, *, sender: str, recipient: str) -> None:
        where = self.config.where
        conn = self._connect(sender.rpartition("@")[2] or "localhost")
        try:
            try:
                code, reply = conn.mail(sender)
                if code != 250:
                    raise _refused(code, reply, "sender address", where)
                code, reply = conn.rcpt(recipient)
                if code not in (250, 251):
                    raise _refused(code, reply, "recipient address", where)
                code, reply = conn.docmd("DATA")
                if code != 354:
                    raise _refused(code, reply, "message", where)
            except (OSError, smtplib.SMTPException) as exc:
                if isinstance(exc, SendError):
                    raise
                raise SendError(
                    f"The connection to {where} failed before the reply was handed over ({exc}). It will be "
                    "retried automatically.",
                    code="smtp_unreachable",
                ) from None
            payload = _LINE_START_DOT.sub(b"..", message.as_bytes(policy=policy.SMTP))
            if not payload.endswith(b"\r\n"):
                payload += b"\r\n"
            try:
                conn.send(payload + b".\r\n")
                code, reply = conn.getreply()
            except (OSError, smtplib.SMTPException) as exc:
                raise SendOutcomeUnknown(
                    f"The connection to {where} broke after the reply was handed over ({exc}), so it may have "
                    "been delivered. It is not sent again automatically: check the mailbox's Sent folder or the "
                    "buyer thread in Seller Central, then mark it sent or send it again.",
                ) from None
            if code != 250:
                raise _refused(code, reply, "message", where)
        finally:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()


@dataclass
class SentMail:
    sender: str
    recipient: str
    message: EmailMessage


@dataclass
class FakeSender:
    """`MailSender` that records; `outcomes` (consumed one per send) may hold exceptions to raise instead."""

    sent: list[SentMail] = field(default_factory=list)
    outcomes: list[BaseException | None] = field(default_factory=list)
    attempts: int = 0

    def send(self, message: EmailMessage, *, sender: str, recipient: str) -> None:
        self.attempts += 1
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, SendOutcomeUnknown):
            self.sent.append(SentMail(sender, recipient, message))  # it did arrive; the answer got lost
        if outcome is not None:
            raise outcome
        self.sent.append(SentMail(sender, recipient, message))

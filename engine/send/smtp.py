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
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
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
    "clean_header_value",
    "tls_context",
]

SECURITY_MODES = ("ssl", "starttls", "none")
_LINE_START_DOT = re.compile(rb"(?m)^\.")
SUBJECT_LIMIT = 250  # characters; a subject is read in one line, and the buyer's may be any length
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ADDRESS = re.compile(r"[^\s@<>()\[\]\\,;:\"]+@[^\s@<>()\[\]\\,;:\"]+")


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
    ca_file: Path | None = None  # trusted beside the system's certificates

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


BeforeData = Callable[[], None]


class MailSender(Protocol):
    def send(
        self, message: EmailMessage, *, sender: str, recipient: str, before_data: BeforeData | None = None
    ) -> None:
        """Deliver `message` to `recipient`, or raise `SendError` / `SendOutcomeUnknown`. `before_data` runs
        right before the server could first receive the mail: an exception from it stops the send there."""
        ...


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Certificate and host name checks on; `ca_file` adds a private CA to the system's."""
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise SendError(
                f"The CA file {ca_file} cannot be read ({exc}). Point REPLYDESK_CA_FILE at a PEM file of "
                "certificates; the reply is retried.",
                code="smtp_tls",
            ) from None
    return context


def bracketed(message_id: str) -> str:
    return f"<{clean_header_value(message_id, 400).replace(' ', '').strip('<>')}>"


def clean_header_value(value: str, limit: int = SUBJECT_LIMIT) -> str:
    """One line of text for a header: line breaks (CR, LF, U+2028, U+2029, NEL), other control characters
    and direction overrides become spaces, runs of spaces collapse, and the result is cut at `limit`."""
    kept: list[str] = []
    for char in value[: limit * 4]:  # bounded work on any input
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp", "Cs") or char in _BIDI_CONTROLS or char.isspace():
            if kept and kept[-1] != " ":
                kept.append(" ")
            continue
        kept.append(char)
    return "".join(kept).strip()[:limit].rstrip()


def _address(value: str, what: str) -> str:
    """A bare address for a header and the envelope, refused when it could smuggle in anything else."""
    address = value.strip()
    if len(address) > 320 or not _ADDRESS.fullmatch(address) or not address.isprintable():
        raise SendError(
            f"The {what} address {address[:80]!r} is not a single valid e-mail address, so the reply cannot be "
            "sent. Correct it (Settings → Stores for the sender; the buyer's relay address comes from the mail).",
            permanent=True,
            code="bad_address",
        )
    return address


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
    """A plain UTF-8 text mail (quoted-printable: safe through any relay), threaded to the buyer's mail.

    Header values are cleaned first (the buyer's subject can decode to line breaks); an unusable address
    raises a permanent `SendError`."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = _address(from_address, "sender")
    message["To"] = _address(to_address, "buyer")  # the exact relay alias, `+suffix` included
    message["Subject"] = clean_header_value(subject) or "Re: Your message"
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
        self._ssl_context = ssl_context or tls_context(config.ca_file)

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
        except ssl.SSLCertVerificationError as exc:
            raise SendError(
                f"The TLS certificate of the SMTP server {cfg.where} is not trusted ({exc.verify_message}). Check "
                "the host name; if the server uses a private certificate, point REPLYDESK_CA_FILE at its CA. "
                "The reply was not sent and is retried.",
                code="smtp_tls_untrusted",
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

    def send(
        self, message: EmailMessage, *, sender: str, recipient: str, before_data: BeforeData | None = None
    ) -> None:
        where = self.config.where
        sender, recipient = _address(sender, "sender"), _address(recipient, "buyer")
        conn = self._connect(sender.rpartition("@")[2] or "localhost")
        try:
            try:
                code, reply = conn.mail(sender)
                if code != 250:
                    raise _refused(code, reply, "sender address", where)
                code, reply = conn.rcpt(recipient)
                if code not in (250, 251):
                    raise _refused(code, reply, "recipient address", where)
                if before_data is not None:
                    before_data()
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

    def send(
        self, message: EmailMessage, *, sender: str, recipient: str, before_data: BeforeData | None = None
    ) -> None:
        self.attempts += 1
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if before_data is not None and (outcome is None or isinstance(outcome, SendOutcomeUnknown)):
            before_data()
        if isinstance(outcome, SendOutcomeUnknown):
            self.sent.append(SentMail(sender, recipient, message))  # it did arrive; the answer got lost
        if outcome is not None:
            raise outcome
        self.sent.append(SentMail(sender, recipient, message))

"""What an IMAP failure means: the error codes a mailbox shows, and the mapping from a refused login or a
socket, TLS or protocol exception to a coded `MailboxError` whose message says what to do."""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
from typing import TYPE_CHECKING

from engine.errors import MailboxError

if TYPE_CHECKING:
    from engine.sync.imap import ImapConfig

__all__ = [
    "APP_PASSWORD_REQUIRED",
    "AUTH_EXPIRED",
    "AUTH_FAILED",
    "CONNECTION_LOST",
    "ERROR_CODES",
    "FOLDER_MISSING",
    "HOST_UNKNOWN",
    "LOGIN_DISABLED",
    "PROTOCOL",
    "TIMEOUT",
    "TLS_FAILED",
    "UNREACHABLE",
    "connection_failure",
    "login_failure",
]

# Error codes a mailbox can show (`Mailbox.last_error_code`, `SyncRun.errors[].code`).
AUTH_FAILED = "auth_failed"
AUTH_EXPIRED = "auth_expired"
APP_PASSWORD_REQUIRED = "app_password_required"
LOGIN_DISABLED = "login_disabled"
TLS_FAILED = "tls_failed"
HOST_UNKNOWN = "host_unknown"
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
FOLDER_MISSING = "folder_missing"
CONNECTION_LOST = "connection_lost"
PROTOCOL = "imap_protocol"
ERROR_CODES = (
    AUTH_FAILED,
    AUTH_EXPIRED,
    APP_PASSWORD_REQUIRED,
    LOGIN_DISABLED,
    TLS_FAILED,
    HOST_UNKNOWN,
    UNREACHABLE,
    TIMEOUT,
    FOLDER_MISSING,
    CONNECTION_LOST,
    PROTOCOL,
)


def login_failure(server_text: str, config: ImapConfig) -> MailboxError:
    """What a refused LOGIN means, from the server's response code and text (RFC 5530 codes first)."""
    server_text = re.sub(r"^b(['\"])(.*)\1$", r"\2", server_text.strip())  # imaplib quotes the bytes
    text = server_text.lower()
    who = f"{config.username} at {config.where}"
    if "[expired]" in text:
        return MailboxError(
            f"The password for {who} has expired. Set a new password (or app password) with your mail provider, "
            "then enter it under Settings → Mailboxes.",
            code=AUTH_EXPIRED,
        )
    if "application-specific password" in text or "app password" in text or "web login required" in text:
        return MailboxError(
            f"The mail provider requires an app password for {who}. Create one in the provider's security "
            "settings and enter it under Settings → Mailboxes instead of the account password.",
            code=APP_PASSWORD_REQUIRED,
        )
    if "[privacyrequired]" in text or "plaintext" in text or "logindisabled" in text:
        return MailboxError(
            f"{config.where} refuses a login without encryption. Set the mailbox security to ssl (port 993) "
            "or starttls (port 143).",
            code=LOGIN_DISABLED,
        )
    return MailboxError(
        f"The mail server refused the login for {who} ({server_text.strip()[:160]}). The password is wrong, or "
        "the app password was revoked or has expired: create a new one if needed and enter it under "
        "Settings → Mailboxes.",
        code=AUTH_FAILED,
    )


def connection_failure(exc: BaseException, config: ImapConfig, *, connected: bool) -> MailboxError:
    """Map a socket/TLS/IMAP exception to a coded `MailboxError`."""
    where = config.where
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailboxError(
            f"The TLS certificate of {where} is not trusted ({exc.verify_message}). Check the host name; if the "
            "server uses a private certificate, install its CA on this machine.",
            code=TLS_FAILED,
        )
    if isinstance(exc, ssl.SSLError):
        return MailboxError(
            f"The TLS handshake with {where} failed ({exc.reason or exc}). Check the security setting: ssl "
            "usually goes with port 993, starttls with port 143.",
            code=TLS_FAILED,
        )
    if isinstance(exc, socket.gaierror):
        return MailboxError(
            f"The mail server name {config.host!r} cannot be resolved. Check the host name.", code=HOST_UNKNOWN
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        return MailboxError(
            f"{where} did not answer within {config.timeout:g} s. Check the host, port and firewall; the "
            "next sync tries again.",
            code=TIMEOUT,
        )
    if not connected and isinstance(exc, OSError):
        return MailboxError(
            f"Cannot connect to {where} ({exc.strerror or exc}). Check the host and port and that the server "
            "is up; the next sync tries again.",
            code=UNREACHABLE,
        )
    if isinstance(exc, imaplib.IMAP4.abort | OSError | EOFError):
        return MailboxError(
            f"The connection to {where} was lost during the sync ({exc}). Nothing was lost; the next sync "
            "continues where this one stopped.",
            code=CONNECTION_LOST,
        )
    return MailboxError(f"The mail server {where} answered unexpectedly: {exc}.", code=PROTOCOL)

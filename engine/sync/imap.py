"""Reading a relay mailbox over IMAP (stdlib `imaplib`), and an in-memory stand-in for tests.

A `MessageSource` opens a session, selects a folder read-only (EXAMINE, so \\Seen and \\Recent never
change), lists the UIDs above the high-water mark (or, on first contact, those inside the back-fill
window), reads their sizes (`RFC822.SIZE`) and fetches them with `BODY.PEEK[]`, or only the headers
and the beginning of the text of a mail too large to take whole. The same session can look a Message-ID
up in the Sent folder and APPEND a copy of a sent reply there. Every failure leaves as a `MailboxError` whose `code`
says which one it was (see `ERROR_CODES`) and whose message tells the user what to do.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import select
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Protocol, Self

from engine.errors import MailboxError

# The error codes and their mapping live in `imap_errors`; importers may keep using this module.
from engine.sync.imap_errors import (
    APP_PASSWORD_REQUIRED,
    AUTH_EXPIRED,
    AUTH_FAILED,
    CONNECTION_LOST,
    ERROR_CODES,
    FOLDER_MISSING,
    HOST_UNKNOWN,
    LOGIN_DISABLED,
    PROTOCOL,
    TIMEOUT,
    TLS_FAILED,
    UNREACHABLE,
    connection_failure,
    login_failure,
)

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
    "FetchedMail",
    "FolderState",
    "ImapConfig",
    "ImapSource",
    "MailSize",
    "MessageSource",
    "connection_failure",
    "imap_date",
    "login_failure",
    "quote_imap",
    "tls_context",
    "uid_set",
]

SECURITY_MODES = ("ssl", "starttls", "none")

_FETCH_UID = re.compile(rb"\bUID (\d+)")
_FETCH_DATE = re.compile(rb'INTERNALDATE "([^"]{1,64})"')
_FETCH_SIZE = re.compile(rb"\bRFC822\.SIZE (\d{1,15})")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    security: str  # ssl, starttls, none
    username: str
    password: str = field(repr=False)
    timeout: float = 30.0
    ca_file: str | None = None  # PEM certificates trusted beside the system's (a private mail server)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass(frozen=True)
class FetchedMail:
    uid: int
    raw: bytes
    internal_date: datetime | None  # when the server received it
    size: int | None = None  # RFC822.SIZE: the whole mail, even when `raw` holds only its beginning
    truncated: bool = False  # `raw` is the headers and the beginning of the text of a larger mail


@dataclass(frozen=True)
class MailSize:
    uid: int
    size: int
    internal_date: datetime | None


class MessageSource(Protocol):
    """One IMAP session: `open` logs in; use as a context manager so `close` always runs."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def select_folder(self, folder: str) -> FolderState: ...
    def search_uids(self, *, after_uid: int, since: date | None) -> list[int]: ...
    def fetch(self, uids: Sequence[int]) -> list[FetchedMail]: ...
    def fetch_sizes(self, uids: Sequence[int]) -> list[MailSize]: ...
    def fetch_truncated(self, uid: int, *, header_bytes: int, text_bytes: int) -> FetchedMail | None: ...
    def contains_message_id(self, folder: str, message_id: str) -> bool: ...
    def append(self, folder: str, raw: bytes) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


# ---- pure helpers -------------------------------------------------------------------------------


def uid_set(uids: Sequence[int]) -> str:
    """`[1, 2, 3, 7, 9, 10]` → `"1:3,7,9:10"`: short commands even for big batches."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("uid_set needs at least one UID")
    ranges: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        ranges.append(f"{start}:{prev}" if prev > start else str(start))
        start = prev = uid
    ranges.append(f"{start}:{prev}" if prev > start else str(start))
    return ",".join(ranges)


def imap_date(day: date) -> str:
    """IMAP's `date` syntax (RFC 3501), independent of the process locale."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


def quote_imap(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_internal_date(value: bytes) -> datetime | None:
    try:
        return datetime.strptime(value.decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None


def tls_context(config: ImapConfig) -> ssl.SSLContext:
    """Certificate and host name checks always on; `ca_file` adds a private CA to the system's."""
    context = ssl.create_default_context()
    if config.ca_file:
        try:
            context.load_verify_locations(cafile=config.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise MailboxError(
                f"The CA file {config.ca_file} cannot be read ({exc}). Point REPLYDESK_CA_FILE at a PEM file "
                "holding the mail server's CA certificate.",
                code=TLS_FAILED,
            ) from exc
    return context


# ---- the real IMAP source -----------------------------------------------------------------------


class ImapSource:
    """`MessageSource` over `imaplib`. One instance is one session; not thread-safe."""

    def __init__(self, config: ImapConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        if config.security not in SECURITY_MODES:
            raise MailboxError(
                f"Unknown mailbox security {config.security!r}: use ssl, starttls or none.", code=PROTOCOL
            )
        self.config = config
        self._ssl_context = ssl_context or tls_context(config)
        self._conn: imaplib.IMAP4 | None = None
        self._capabilities: set[str] | None = None

    # context management
    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def conn(self) -> imaplib.IMAP4:
        if self._conn is None:
            raise MailboxError("The IMAP session is not open.", code=PROTOCOL)
        return self._conn

    def open(self) -> None:
        cfg = self.config
        try:
            if cfg.security == "ssl":
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    cfg.host, cfg.port, ssl_context=self._ssl_context, timeout=cfg.timeout
                )
            else:
                conn = imaplib.IMAP4(cfg.host, cfg.port, timeout=cfg.timeout)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise connection_failure(exc, cfg, connected=False) from exc
        self._conn = conn
        try:
            if cfg.security == "starttls":
                try:
                    conn.starttls(self._ssl_context)
                except imaplib.IMAP4.error as exc:
                    raise MailboxError(
                        f"{cfg.where} does not offer STARTTLS ({exc}). Use security ssl (port 993), or none "
                        "only on a trusted network.",
                        code=TLS_FAILED,
                    ) from exc
            try:
                conn.login(cfg.username, cfg.password)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                raise login_failure(str(exc), cfg) from None
        except MailboxError:
            self.close()
            raise
        except (OSError, imaplib.IMAP4.error) as exc:
            self.close()
            raise connection_failure(exc, cfg, connected=True) from exc

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.state == "SELECTED":
                conn.close()
            conn.logout()
        except (OSError, imaplib.IMAP4.error):
            with contextlib.suppress(OSError):
                conn.shutdown()

    def _call(self, what: str, *args: str) -> list[object]:
        """Run one command; `NO`/`BAD` and dropped connections become coded `MailboxError`s."""
        try:
            typ, data = getattr(self.conn, what)(*args)
        except imaplib.IMAP4.abort as exc:
            raise connection_failure(exc, self.config, connected=True) from exc
        except imaplib.IMAP4.error as exc:
            raise MailboxError(f"{self.config.where} refused {what.upper()}: {exc}.", code=PROTOCOL) from exc
        except OSError as exc:
            raise connection_failure(exc, self.config, connected=True) from exc
        if typ != "OK":
            raise MailboxError(f"{self.config.where} answered {typ} to {what.upper()}: {data!r}.", code=PROTOCOL)
        return list(data)

    def select_folder(self, folder: str) -> FolderState:
        try:
            typ, data = self.conn.select(quote_imap(folder), readonly=True)
        except imaplib.IMAP4.abort as exc:
            raise connection_failure(exc, self.config, connected=True) from exc
        except OSError as exc:
            raise connection_failure(exc, self.config, connected=True) from exc
        if typ != "OK":
            raise MailboxError(
                f"The folder {folder!r} does not exist for {self.config.username} at {self.config.where}. "
                "Check the folder name under Settings → Mailboxes (it is case-sensitive).",
                code=FOLDER_MISSING,
            )
        uidvalidity = self._response_int("UIDVALIDITY")
        if uidvalidity is None:
            raise MailboxError(f"{self.config.where} did not report UIDVALIDITY for {folder!r}.", code=PROTOCOL)
        exists = int(data[0]) if data and data[0] else 0
        return FolderState(uidvalidity=uidvalidity, uidnext=self._response_int("UIDNEXT"), exists=exists)

    def _response_int(self, name: str) -> int | None:
        _, values = self.conn.response(name)
        value = values[0] if values else None
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        return int(value) if isinstance(value, str) and value.strip().isdigit() else None

    def search_uids(self, *, after_uid: int, since: date | None) -> list[int]:
        criteria: list[str] = []
        if after_uid > 0:
            criteria += ["UID", f"{after_uid + 1}:*"]
        if since is not None:
            criteria += ["SINCE", imap_date(since)]
        data = self._call("uid", "SEARCH", *(criteria or ["ALL"]))
        found = [int(token) for chunk in data if isinstance(chunk, bytes) for token in chunk.split()]
        # `n:*` always matches the highest UID, even when it is below n.
        return sorted(uid for uid in set(found) if uid > after_uid)

    def fetch(self, uids: Sequence[int]) -> list[FetchedMail]:
        if not uids:
            return []
        data = self._call("uid", "FETCH", uid_set(uids), "(UID INTERNALDATE BODY.PEEK[])")
        wanted = set(uids)
        mails: dict[int, FetchedMail] = {}
        for item in data:
            if not isinstance(item, tuple) or len(item) < 2:
                continue  # closing parens and unsolicited flag updates
            head, raw = item[0], item[1]
            uid_match = _FETCH_UID.search(head)
            if uid_match is None or not isinstance(raw, bytes):
                continue
            uid = int(uid_match.group(1))
            if uid not in wanted:
                continue
            date_match = _FETCH_DATE.search(head)
            internal = _parse_internal_date(date_match.group(1)) if date_match else None
            mails[uid] = FetchedMail(uid=uid, raw=raw, internal_date=internal, size=len(raw))
        return [mails[uid] for uid in sorted(mails)]

    def fetch_sizes(self, uids: Sequence[int]) -> list[MailSize]:
        """Size and arrival time of each mail, without its content: what to fetch whole, what in part."""
        if not uids:
            return []
        data = self._call("uid", "FETCH", uid_set(uids), "(UID RFC822.SIZE INTERNALDATE)")
        wanted = set(uids)
        sizes: dict[int, MailSize] = {}
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            uid_match, size_match = _FETCH_UID.search(line), _FETCH_SIZE.search(line)
            if uid_match is None or size_match is None or int(uid_match.group(1)) not in wanted:
                continue
            date_match = _FETCH_DATE.search(line)
            uid = int(uid_match.group(1))
            internal = _parse_internal_date(date_match.group(1)) if date_match else None
            sizes[uid] = MailSize(uid, int(size_match.group(1)), internal)
        return [sizes[uid] for uid in sorted(sizes)]

    def fetch_truncated(self, uid: int, *, header_bytes: int, text_bytes: int) -> FetchedMail | None:
        """The headers (up to `header_bytes`) and the first `text_bytes` of the body of one mail."""
        data = self._call(
            "uid",
            "FETCH",
            str(uid),
            f"(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER]<0.{header_bytes}> BODY.PEEK[TEXT]<0.{text_bytes}>)",
        )
        header = text = b""
        meta: list[bytes] = []  # everything but the literals: UID, size and date may come in any order
        for item in data:
            if isinstance(item, tuple) and len(item) >= 2 and isinstance(item[0], bytes):
                meta.append(item[0])
                if isinstance(item[1], bytes):
                    if b"BODY[HEADER]" in item[0]:
                        header = item[1]
                    elif b"BODY[TEXT]" in item[0]:
                        text = item[1]
            elif isinstance(item, bytes):
                meta.append(item)
        joined = b" ".join(meta)
        uid_match = _FETCH_UID.search(joined)
        if uid_match is None or int(uid_match.group(1)) != uid:
            return None
        size_match, date_match = _FETCH_SIZE.search(joined), _FETCH_DATE.search(joined)
        size = int(size_match.group(1)) if size_match else None
        internal = _parse_internal_date(date_match.group(1)) if date_match else None
        # A header cut mid-line would run into the text: keep whole lines only, then the blank line.
        if not header.endswith(b"\r\n\r\n"):
            header = header[: header.rfind(b"\n") + 1] if b"\n" in header else b""
            header += b"\r\n"
        return FetchedMail(uid=uid, raw=header + text, internal_date=internal, size=size, truncated=True)

    # ---- Sent folder -----------------------------------------------------------------------------

    def contains_message_id(self, folder: str, message_id: str) -> bool:
        """True when `folder` holds a mail with this Message-ID; raises when the folder cannot be searched."""
        self.select_folder(folder)
        data = self._call("uid", "SEARCH", "HEADER", "Message-ID", quote_imap(f"<{message_id.strip('<>')}>"))
        return any(chunk.split() for chunk in data if isinstance(chunk, bytes))

    def append(self, folder: str, raw: bytes) -> None:
        """Store a copy (marked \\Seen) in `folder`, creating the folder when the server asks for it."""
        when = imaplib.Time2Internaldate(time.time())
        try:
            typ, data = self.conn.append(quote_imap(folder), r"(\Seen)", when, raw)
            if typ != "OK" and b"TRYCREATE" in b" ".join(d for d in data if isinstance(d, bytes)):
                self.conn.create(quote_imap(folder))
                typ, data = self.conn.append(quote_imap(folder), r"(\Seen)", when, raw)
        except (OSError, imaplib.IMAP4.abort) as exc:
            raise connection_failure(exc, self.config, connected=True) from exc
        except imaplib.IMAP4.error as exc:
            raise MailboxError(
                f"{self.config.where} refused to store a copy in {folder!r}: {exc}.", code=PROTOCOL
            ) from exc
        if typ != "OK":
            raise MailboxError(f"{self.config.where} refused to store a copy in {folder!r}: {data!r}.", code=PROTOCOL)

    # ---- IDLE ------------------------------------------------------------------------------------

    @property
    def supports_idle(self) -> bool:
        if self._capabilities is None:
            data = self._call("capability")
            words = b" ".join(d for d in data if isinstance(d, bytes)).upper().split()
            self._capabilities = {w.decode("ascii", "replace") for w in words}
        return "IDLE" in self._capabilities

    def idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for new mail in the selected folder (RFC 2177). True if some arrived.

        Without IDLE support this just sleeps, so callers can use it unconditionally.
        """
        if not self.supports_idle:
            time.sleep(timeout)
            return False
        conn = self.conn
        tag = conn._new_tag()
        arrived = False
        try:
            conn.send(tag + b" IDLE\r\n")
            line = conn.readline()
            if not line.startswith(b"+"):
                raise MailboxError(f"{self.config.where} refused IDLE: {line!r}.", code=PROTOCOL)
            sock = conn.socket()
            deadline = time.monotonic() + timeout
            # select() on the raw socket, never a socket timeout: a timed-out socket file cannot be read again.
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                line = conn.readline()
                if not line:
                    raise EOFError("server closed the connection during IDLE")
                if line.rstrip().upper().endswith((b"EXISTS", b"RECENT")):
                    arrived = True
                    break
            conn.send(b"DONE\r\n")
            while True:
                line = conn.readline()
                if not line:
                    raise EOFError("server closed the connection after IDLE")
                if line.rstrip().upper().endswith(b"EXISTS"):
                    arrived = True
                if line.startswith(tag):
                    break
        except (OSError, EOFError, imaplib.IMAP4.abort) as exc:
            raise connection_failure(exc, self.config, connected=True) from exc
        return arrived

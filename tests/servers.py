"""Real servers for tests: a private Dovecot (IMAP) and an aiosmtpd SMTP server, both on loopback.

Import the fixtures into a test module: `from tests.servers import dovecot_fixture, smtp_server_fixture  # noqa: F401`
(registered as `dovecot` and `smtp_server`; the different names keep ruff's F811 quiet).
`DovecotServer` is usable without pytest too (the sync benchmark runs it).
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.db import Database
from engine.settings import Settings
from tests.tls import ServerCertificate

DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_fsync = never
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"""
# With TLS: IMAPS on its own port and STARTTLS on the plain one, both with a throwaway CA's certificate.
DOVECOT_TLS = """\
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2"""


USERS_PER_SERVER = 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, up: bool = True, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            reachable = sock.connect_ex(("127.0.0.1", port)) == 0
        if reachable == up:
            return
        time.sleep(0.02)
    raise RuntimeError(f"port {port} did not {'open' if up else 'close'} within {timeout} s")


@dataclass
class ImapUser:
    name: str
    password: str


class DovecotServer:
    """A throwaway Dovecot: config, mail and state under a temporary folder; `with` starts and stops it.

    `DovecotServer(tls=True)` also serves IMAPS on `imaps_port` and STARTTLS on `port`, with a certificate
    for 127.0.0.1 and localhost from a throwaway CA (`ca_file`); without it there is no TLS at all.
    """

    def __init__(self, *, tls: bool = False) -> None:
        if shutil.which("dovecot") is None:
            raise RuntimeError("dovecot is not installed: run `apt-get install -y dovecot-imapd` (or `make test`).")
        # Short path: Dovecot's unix sockets live under base_dir and socket paths are limited to ~100 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="dc-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.conf = self.root / "dovecot.conf"
        self.passwd = self.root / "passwd"
        dovecot = pwd.getpwnam("dovecot")
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir()
        os.chown(self.root / "mail", dovecot.pw_uid, dovecot.pw_gid)
        # All users are written up front: Dovecot may miss a passwd-file change made within the same second.
        self._free_users = [ImapUser(f"user{i}", uuid.uuid4().hex[:12]) for i in range(USERS_PER_SERVER)]
        self.passwd.write_text("".join(f"{u.name}:{{PLAIN}}{u.password}::::::\n" for u in self._free_users))
        self.passwd.chmod(0o644)
        self.imaps_port = 0
        self.ca_file: Path | None = None
        ssl = "ssl = no"
        if tls:
            from tests.tls import ThrowawayCA

            ca = ThrowawayCA(self.root / "tls")
            certificate = ca.issue("dovecot")
            self.ca_file, self.imaps_port = ca.ca_file, free_port()
            ssl = DOVECOT_TLS.format(cert=certificate.cert_file, key=certificate.key_file)
        self.conf.write_text(DOVECOT_CONF.format(root=self.root, port=self.port, imaps_port=self.imaps_port, ssl=ssl))

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        # Dovecot daemonizes: its output must not be a pipe, or waiting for the pipe to close never ends.
        result = subprocess.run(
            ["dovecot", "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(f"dovecot did not start (exit {result.returncode}); see {self.root}/dovecot.log")
        wait_for_port(self.port)
        if self.imaps_port:
            wait_for_port(self.imaps_port)

    def stop(self) -> None:
        subprocess.run(
            ["doveadm", "-c", str(self.conf), "stop"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with contextlib.suppress(RuntimeError):
            wait_for_port(self.port, up=False)

    def restart(self) -> None:
        """Like a service restart: open sessions are cut (a bare master restart would let them live on)."""
        subprocess.run(
            ["doveadm", "-c", str(self.conf), "kick", "*"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.stop()
        self.start()

    def new_user(self, prefix: str = "seller") -> ImapUser:
        """A user of its own per test: tests sharing one server never see each other's mail."""
        if not self._free_users:
            raise RuntimeError(f"all {USERS_PER_SERVER} test users of this Dovecot are taken")
        return self._free_users.pop(0)

    @contextlib.contextmanager
    def connect(self, user: ImapUser) -> Iterator[imaplib.IMAP4]:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(user.name, user.password)
        try:
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    def append(self, user: ImapUser, raws: list[bytes], folder: str = "INBOX") -> None:
        with self.connect(user) as conn:
            append_all(conn, raws, folder)

    def recreate_folder(self, user: ImapUser, folder: str) -> None:
        """Delete `folder` and create it again with the same mails: the server issues a new UIDVALIDITY."""
        with self.connect(user) as conn:
            conn.select(folder)
            _, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[])")
            raws = [item[1] for item in data if isinstance(item, tuple)]
            conn.close()
            conn.delete(folder)  # INBOX cannot be deleted: tests recreate a folder of their own
            conn.create(folder)
            append_all(conn, raws, folder)

    def seen_flags(self, user: ImapUser, folder: str = "INBOX") -> list[bool]:
        with self.connect(user) as conn:
            conn.select(folder, readonly=True)
            _, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            return [b"\\Seen" in item for item in data if isinstance(item, bytes)]

    def create_folder(self, user: ImapUser, folder: str) -> None:
        with self.connect(user) as conn:
            conn.create(folder)

    def count(self, user: ImapUser, folder: str = "INBOX") -> int:
        with self.connect(user) as conn:
            typ, data = conn.select(folder, readonly=True)
            return int(data[0]) if typ == "OK" and data[0] else 0


def append_all(conn: imaplib.IMAP4, raws: list[bytes], folder: str = "INBOX") -> None:
    for raw in raws:
        typ, data = conn.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
        if typ != "OK":
            raise RuntimeError(f"APPEND failed: {data!r}")


@pytest.fixture(scope="module", name="dovecot")
def dovecot_fixture() -> Iterator[DovecotServer]:
    """One Dovecot per test module (it starts in a fraction of a second); users keep tests apart."""
    with DovecotServer() as server:
        yield server


@pytest.fixture(scope="module", name="dovecot_tls")
def dovecot_tls_fixture() -> Iterator[DovecotServer]:
    """A Dovecot with IMAPS and STARTTLS (certificate from a throwaway CA: `server.ca_file`)."""
    with DovecotServer(tls=True) as server:
        yield server


# ---- SMTP ----------------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class SmtpCapture:
    """What the test SMTP server received, and how it should answer the next DATA commands.

    `replies` is consumed one per message: "250 ..." accepts, "451 ..."/"550 ..." refuse (nothing
    recorded), "drop" records the message and then closes the connection without answering.
    `on_rcpt` runs before a recipient is answered and `on_data(content, accepted)` once a message's data is
    in, before the answer: they may block (the fault suite kills the client there) or file the mail elsewhere.
    `require_tls`: the fixture `smtp_tls_server` offers STARTTLS and refuses mail without it.
    """

    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_rcpt: Callable[[], None] | None = None
    on_data: Callable[[bytes, bool], None] | None = None
    logins: list[str] = field(default_factory=list)

    def count(self, message_id: str) -> int:
        """How many received mails carry this Message-ID (a reply sent twice shows as 2)."""
        needle = f"<{message_id.strip('<>')}>".encode()
        return sum(needle in r.content.split(b"\r\n\r\n", 1)[0] for r in self.received)


class _CaptureHandler:
    def __init__(self, capture: SmtpCapture) -> None:
        self.capture = capture

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if self.capture.on_rcpt is not None:
            self.capture.on_rcpt()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        capture = self.capture
        with capture.lock:
            reply = capture.replies.pop(0) if capture.replies else "250 2.0.0 OK: queued"
            content = bytes(envelope.original_content or envelope.content)
            accepted = reply.startswith("250") or reply == "drop"
            if accepted:
                capture.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), content))
        if capture.on_data is not None:
            capture.on_data(content, accepted)
        if reply == "drop":
            # Accepted, then the line goes dead before the client hears "250": the outcome is unknown to it.
            server.transport.abort()
            return "250 2.0.0 OK"
        return reply


class _Logins:
    """Accepts any password over TLS and remembers the user names (aiosmtpd offers AUTH only after STARTTLS)."""

    def __init__(self, capture: SmtpCapture) -> None:
        self.capture = capture

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        login = getattr(auth_data, "login", b"")
        self.capture.logins.append(login.decode() if isinstance(login, bytes) else str(login))
        return AuthResult(success=True)


@contextlib.contextmanager
def smtp_server(tls: ServerCertificate | None = None) -> Iterator[SmtpCapture]:
    """An aiosmtpd server on loopback; with `tls`, STARTTLS with that certificate, required before MAIL."""
    import ssl

    from aiosmtpd.controller import Controller

    capture = SmtpCapture(host="127.0.0.1", port=free_port())
    options: dict[str, Any] = {}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
        options = {"tls_context": context, "require_starttls": True, "authenticator": _Logins(capture)}
    controller = Controller(_CaptureHandler(capture), hostname=capture.host, port=capture.port, **options)
    controller.start()
    try:
        yield capture
    finally:
        controller.stop()


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[SmtpCapture]:
    with smtp_server() as capture:
        yield capture


# ---- relay mail and mailbox rows -----------------------------------------------------------------

DEMO_DIR = Path(__file__).resolve().parent.parent / "knowledge" / "demo"
_MESSAGE_ID = re.compile(rb"(?im)^Message-ID:[^\r\n]*(\r?\n[ \t][^\r\n]*)*")


def demo_mails() -> list[bytes]:
    return [path.read_bytes() for path in sorted(DEMO_DIR.glob("*.eml"))]


def with_message_id(raw: bytes, message_id: str) -> bytes:
    header = f"Message-ID: <{message_id}>".encode()
    if _MESSAGE_ID.search(raw):
        return _MESSAGE_ID.sub(header, raw, count=1)
    return header + b"\r\n" + raw


def relay_mails(n: int, tag: str | None = None) -> list[bytes]:
    """`n` demo relay mails, each with a Message-ID of its own (so each is a new mail)."""
    tag = tag or uuid.uuid4().hex[:8]
    demos = demo_mails()
    return [with_message_id(demos[i % len(demos)], f"{tag}.{i}@relay.test") for i in range(n)]


def make_mailbox(
    db: Database,
    settings: Settings,
    server: DovecotServer | None = None,
    user: ImapUser | None = None,
    *,
    store: str = "Northwind Gear",
    name: str | None = None,
    folder: str = "INBOX",
    password: str | None = None,
    imap_security: str = "none",
    smtp: SmtpCapture | None = None,
    sender: str = "service@northwind-gear.example",
    smtp_security: str = "none",
) -> int:
    """A mailbox row for `user` on the test Dovecot (and the test SMTP server, if given); returns its id.

    Without a server the IMAP side points at a closed port (for tests that only send).
    """
    from engine.services.mailboxes import add_mailbox
    from engine.services.stores import ensure_store

    with db.transaction() as session:
        store_row = ensure_store(session, store, sender_address=sender)
        mailbox = add_mailbox(
            session,
            settings,
            store_row,
            name=name or (user.name if user else "smtp-only"),
            imap_host=server.host if server else "127.0.0.1",
            imap_port=(server.imaps_port if imap_security == "ssl" else server.port) if server else free_port(),
            imap_security=imap_security,
            username=user.name if user else "nobody",
            password=password or (user.password if user else "unused"),
            folder=folder,
            smtp_host=smtp.host if smtp else None,
            smtp_port=smtp.port if smtp else 587,
            smtp_security=smtp_security,
        )
        return mailbox.id


# A buyer message with a `+suffix` alias and a non-ASCII subject, and a reply the compliance gate accepts.
THREAD_MAIL = DEMO_DIR / "de-return_refund-thread-1.eml"
BUYER_ALIAS = "r3t8m2k9w4q7z1x+Kq7Zr2@marketplace.amazon.de"
GOOD_REPLY = (
    "Hallo Lena,\n\nvielen Dank für Ihre Nachricht. Die Rücksendung zur Bestellung 304-2290311-6648172 ist "
    "angemeldet; die Erstattung folgt, sobald die Jacke bei uns eingetroffen ist.\n.\nViele Grüße\nIhr Team"
)


def queue_reply(db: Database, mailbox_id: int, body: str = GOOD_REPLY, *, buyer_message_id: str | None = None) -> int:
    """Store a buyer mail for the mailbox's store, draft `body`, approve it: the outbox item's id."""
    from engine.compliance import check_reply
    from engine.db.models import Draft, DraftStatus, Mailbox, Message
    from engine.send.outbox import enqueue_reply
    from engine.services.inbox import store_mail

    buyer_message_id = buyer_message_id or f"{uuid.uuid4().hex}@eu-west-1.amazonses.com"
    with db.transaction() as session:
        mailbox = session.get_one(Mailbox, mailbox_id)
        raw = with_message_id(THREAD_MAIL.read_bytes(), buyer_message_id)
        stored = store_mail(session, mailbox.store, raw, source="test", mailbox_id=mailbox_id)
        message = session.get_one(Message, stored.message_row_id)
        draft = Draft(
            conversation_id=message.conversation_id,
            message_id=message.id,
            status=DraftStatus.APPROVED,
            text=body,
            final_text=body,
            language="de",
            drafter="test",
            sources=[],
            verdict={},
        )
        session.add(draft)
        session.flush()
        return enqueue_reply(session, draft, body, check_reply(body, buyer_language="de")).id

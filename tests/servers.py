"""Real servers for tests: a private Dovecot (IMAP) and an aiosmtpd SMTP server, both on loopback.

Import the fixtures into a test module: `from tests.servers import dovecot, smtp_server  # noqa: F401`.
`DovecotServer` is usable without pytest too (the sync benchmark runs it).
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
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
    port = 0
  }}
}}
"""


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
    """A throwaway Dovecot: config, mail and state under a temporary folder; `with` starts and stops it."""

    def __init__(self) -> None:
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
        self.passwd.write_text("")
        self.passwd.chmod(0o644)
        self.conf.write_text(DOVECOT_CONF.format(root=self.root, port=self.port))

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        # Dovecot daemonizes: its output must not be a pipe, or waiting for the pipe to close never ends.
        result = subprocess.run(["dovecot", "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"dovecot did not start (exit {result.returncode}); see {self.root}/dovecot.log")
        wait_for_port(self.port)

    def stop(self) -> None:
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        with contextlib.suppress(RuntimeError):
            wait_for_port(self.port, up=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def new_user(self, prefix: str = "seller") -> ImapUser:
        """A user of its own per test: tests sharing one server never see each other's mail."""
        user = ImapUser(f"{prefix}{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:12])
        with self.passwd.open("a") as handle:
            handle.write(f"{user.name}:{{PLAIN}}{user.password}::::::\n")
        return user

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
            if folder.upper() == "INBOX":
                # INBOX cannot be deleted: rename it away (a new, empty INBOX appears) and copy back.
                conn.rename("INBOX", "Old")
                conn.delete("Old")
            else:
                conn.delete(folder)
                conn.create(folder)
            append_all(conn, raws, folder)

    def seen_flags(self, user: ImapUser, folder: str = "INBOX") -> list[bool]:
        with self.connect(user) as conn:
            conn.select(folder, readonly=True)
            _, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            return [b"\\Seen" in item for item in data if isinstance(item, bytes)]

    def count(self, user: ImapUser, folder: str = "INBOX") -> int:
        with self.connect(user) as conn:
            typ, data = conn.select(folder, readonly=True)
            return int(data[0]) if typ == "OK" and data[0] else 0


def append_all(conn: imaplib.IMAP4, raws: list[bytes], folder: str = "INBOX") -> None:
    for raw in raws:
        typ, data = conn.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
        if typ != "OK":
            raise RuntimeError(f"APPEND failed: {data!r}")


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot per test module (it starts in a fraction of a second); users keep tests apart."""
    with DovecotServer() as server:
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
    """

    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _CaptureHandler:
    def __init__(self, capture: SmtpCapture) -> None:
        self.capture = capture

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        capture = self.capture
        with capture.lock:
            reply = capture.replies.pop(0) if capture.replies else "250 2.0.0 OK: queued"
            if reply.startswith("250") or reply == "drop":
                content = envelope.original_content or envelope.content
                capture.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(content)))
        if reply == "drop":
            # Accepted, then the line goes dead before the client hears "250": the outcome is unknown to it.
            server.transport.abort()
            return "250 2.0.0 OK"
        return reply


@pytest.fixture
def smtp_server() -> Iterator[SmtpCapture]:
    from aiosmtpd.controller import Controller

    capture = SmtpCapture(host="127.0.0.1", port=free_port())
    controller = Controller(_CaptureHandler(capture), hostname=capture.host, port=capture.port)
    controller.start()
    try:
        yield capture
    finally:
        controller.stop()

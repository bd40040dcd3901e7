"""Crash injections around SMTP: a send worker process is killed with SIGKILL at a precise point of the
exchange with a real SMTP server (aiosmtpd), then another worker settles what it left behind.

Cases (each on SQLite and PostgreSQL):
- killed before DATA (while the server answers RCPT): the mail cannot be on the server; sent again, once;
- killed after DATA, before the server's answer (the server has the mail): `unknown` for a human, unless
  the mailbox files sent mail by itself (the provider files it in Sent, so it is found: `sent`);
- killed after DATA on such a mailbox while the server loses the mail: the Sent folder positively lacks
  it, so it is sent again, once;
- killed after the server's 250, before the outbox commit: as after DATA.
Plus two worker processes started together over one PostgreSQL outbox: every reply sent exactly once.

The Sent folder is a real Dovecot folder; "the provider files sent mail" is the SMTP server appending each
accepted mail to it over IMAP, as Gmail does. `run_send_faults(rounds)` returns one row per case and
database; `python -m evals.faults_send` prints them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from engine.db import Database
from engine.db.base import utcnow
from engine.db.models import Mailbox, OutboxItem, OutboxState
from engine.send.smtp import BeforeData, SmtpConfig, SmtpSender
from engine.send.worker import LEASE, send_pending
from engine.settings import Settings
from evals.databases import BACKENDS, throwaway_database
from tests.servers import DovecotServer, ImapUser, SmtpCapture, make_mailbox, queue_reply, smtp_server

__all__ = ["CASES", "run_send_faults", "two_workers_one_outbox"]

REPO_ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 120.0


@dataclass(frozen=True)
class Case:
    name: str
    provider_files: bool  # the mailbox's provider files sent mail in Sent (and the mailbox knows it)
    kill_at: str  # rcpt, data, data_lost, after_250
    expect: str  # the state every run must end in: sent or unknown


CASES = (
    Case("killed before DATA", False, "rcpt", "sent"),
    Case("killed after DATA, before the reply", False, "data", "unknown"),
    Case("killed after DATA, before the reply; provider files Sent", True, "data", "sent"),
    Case("killed after DATA, mail lost; provider files Sent", True, "data_lost", "sent"),
    Case("killed after 250, before the commit", False, "after_250", "unknown"),
    Case("killed after 250, before the commit; provider files Sent", True, "after_250", "sent"),
)


@dataclass
class _Child:
    """The worker process under test; the SMTP server's hooks kill it at the chosen point."""

    process: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """SIGKILL, and wait until it is gone; nothing when it has ended already."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(CHILD_TIMEOUT)


def _child_environment(db: Database, settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "REPLYDESK_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
            "REPLYDESK_DATA_DIR": str(settings.data_dir),
            "REPLYDESK_NLP": "fake",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        }
    )
    return env


def _spawn(db: Database, settings: Settings, kill_at: str, start_after: Path | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "evals.faults_send", "--worker"]
    if kill_at == "after_250":
        command.append("--die-after-accept")
    if start_after is not None:
        command += ["--start-after", str(start_after)]
    return subprocess.Popen(
        command,
        cwd=settings.data_dir,  # no `.env` of the repository's is read
        env=_child_environment(db, settings),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@contextlib.contextmanager
def _armed(capture: SmtpCapture, case: Case, child: _Child, file_in_sent: Callable[[bytes], None]) -> Iterator[None]:
    """The server for one run: it kills the client at `case.kill_at` and, when the provider files sent mail,
    files every accepted mail in Sent (also the resends of the settling worker)."""

    def on_rcpt() -> None:
        if case.kill_at == "rcpt":
            child.kill()

    def on_data(raw: bytes, accepted: bool) -> None:
        if accepted and case.provider_files:
            file_in_sent(raw)
        if case.kill_at in ("data", "data_lost"):
            child.kill()

    capture.on_rcpt, capture.on_data = on_rcpt, on_data
    if case.kill_at == "data_lost":
        capture.replies.append("451 4.3.0 lost")  # nothing recorded or filed: the mail never arrived
    try:
        yield
    finally:
        capture.on_rcpt = capture.on_data = None
        capture.replies.clear()


def _settle(db: Database, settings: Settings) -> None:
    """Another worker, after the dead one's lease: recovery, any resend, and one more look."""
    for leases in (1, 2, 3):
        at = utcnow() + LEASE * leases + timedelta(seconds=1)
        send_pending(db, settings, now=_clock(at))


def _clock(at: datetime) -> Callable[[], datetime]:
    return lambda: at


def _one_run(
    db: Database,
    settings: Settings,
    mailbox: tuple[int, ImapUser],
    capture: SmtpCapture,
    case: Case,
    dovecot: DovecotServer,
) -> tuple[str, int]:
    """The item's final state and how many times the server received it."""
    mailbox_id, user = mailbox
    item_id = queue_reply(db, mailbox_id)
    child = _Child()
    with _armed(capture, case, child, lambda raw: dovecot.append(user, [raw], "Sent")):
        child.process = _spawn(db, settings, case.kill_at)
        try:
            returncode = child.process.wait(CHILD_TIMEOUT)
        finally:
            child.kill()
        if returncode != -signal.SIGKILL:
            stderr = child.process.stderr.read().decode(errors="replace") if child.process.stderr else ""
            raise RuntimeError(f"{case.name}: the worker was not killed where intended (exit {returncode}): {stderr}")
        _settle(db, settings)
    with db.read() as session:
        item = session.get_one(OutboxItem, item_id)
        return str(item.state), capture.count(item.message_id)


def _mailbox(
    db: Database, settings: Settings, dovecot: DovecotServer, capture: SmtpCapture, files: bool
) -> tuple[int, ImapUser]:
    user = dovecot.new_user()
    # A store of its own: replies go out through the store's first mailbox.
    mailbox_id = make_mailbox(db, settings, dovecot, user, store=f"Store {user.name}", smtp=capture)
    with db.transaction() as session:
        session.get_one(Mailbox, mailbox_id).files_sent_mail = files
    return mailbox_id, user


def run_send_faults(rounds: int = 20) -> list[dict[str, object]]:
    """At least `rounds` crash injections per database, spread evenly over the cases, plus two workers over
    one PostgreSQL outbox. One row per case and database."""
    per_case = max(1, -(-rounds // len(CASES)))
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="send-faults-") as folder, DovecotServer() as dovecot:
        for backend in BACKENDS:
            settings = Settings(data_dir=Path(folder) / backend / "data", nlp_backend="fake")
            settings.data_dir.mkdir(parents=True)
            # A server per database: Message-IDs derive from row ids, which each new database starts again.
            with throwaway_database(backend, Path(folder) / backend) as db, smtp_server() as capture:
                for case in CASES:
                    mailbox = _mailbox(db, settings, dovecot, capture, case.provider_files)
                    outcomes = [_one_run(db, settings, mailbox, capture, case, dovecot) for _ in range(per_case)]
                    rows.append(_row(f"{case.name} · {backend}", case.expect, outcomes))
        rows.append(two_workers_one_outbox(max(rounds, 12), folder=Path(folder) / "two-workers"))
    return rows


def _row(case: str, expect: str, outcomes: list[tuple[str, int]]) -> dict[str, object]:
    return {
        "case": case,
        "runs": len(outcomes),
        "double_sends": sum(received > 1 for _, received in outcomes),
        "unknown": sum(state == OutboxState.UNKNOWN for state, _ in outcomes),
        "sent": sum(state == OutboxState.SENT for state, _ in outcomes),
        "expected": expect,
        # A run ending `sent` without the server holding the mail, or in any other state, lost a reply.
        "lost": sum(
            (state == OutboxState.SENT and received == 0) or state not in (OutboxState.SENT, OutboxState.UNKNOWN)
            for state, received in outcomes
        ),
    }


def two_workers_one_outbox(replies: int = 20, *, folder: Path) -> dict[str, object]:
    """Two worker processes started together over one PostgreSQL outbox and a slow server: each reply
    reaches the server once. `per_worker` says how the replies were shared."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=folder / "data", nlp_backend="fake")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    go = folder / "go"
    with throwaway_database("postgresql", folder) as db, smtp_server() as capture:
        mailbox_id = make_mailbox(db, settings, smtp=capture)
        ids = [queue_reply(db, mailbox_id) for _ in range(replies)]
        capture.on_rcpt = lambda: time.sleep(0.1)  # long enough for the other worker to reach for the same row
        workers = [_spawn(db, settings, "none", start_after=go) for _ in range(2)]
        go.touch()
        sent: list[int] = []
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=CHILD_TIMEOUT)
            if worker.returncode != 0:
                raise RuntimeError(
                    f"a send worker failed (exit {worker.returncode}): {stderr.decode(errors='replace')}"
                )
            sent.append(int(json.loads(stdout.decode().strip().splitlines()[-1])["sent"]))
        with db.read() as session:
            outcomes = []
            for item_id in ids:
                item = session.get_one(OutboxItem, item_id)
                outcomes.append((str(item.state), capture.count(item.message_id)))
    return {**_row("two workers, one outbox · postgresql", "sent", outcomes), "per_worker": "+".join(map(str, sent))}


# ---- the worker process ---------------------------------------------------------------------------------


class _DieAfterAccept:
    """A sender that kills its own process the moment the server has said 250: before any commit."""

    def __init__(self, config: SmtpConfig) -> None:
        self._sender = SmtpSender(config)

    def send(
        self, message: EmailMessage, *, sender: str, recipient: str, before_data: BeforeData | None = None
    ) -> None:
        self._sender.send(message, sender=sender, recipient=recipient, before_data=before_data)
        os.kill(os.getpid(), signal.SIGKILL)


def _worker(die_after_accept: bool, start_after: Path | None) -> int:
    settings = Settings.from_env()
    db = Database(settings.resolved_database_url)
    deadline = time.monotonic() + CHILD_TIMEOUT
    while start_after is not None and not start_after.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    if die_after_accept:
        counts = send_pending(db, settings, sender_factory=_DieAfterAccept, limit=1)
    else:
        counts = send_pending(db, settings)
    print(json.dumps(vars(counts)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20, help="crash injections per case and database")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--die-after-accept", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start-after", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.die_after_accept, args.start_after)
    rows = run_send_faults(args.rounds)
    for row in rows:
        print(" | ".join(f"{key}={value}" for key, value in row.items()))
    bad = [r for r in rows if r["double_sends"] or r["lost"] or r[str(r["expected"])] != r["runs"]]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

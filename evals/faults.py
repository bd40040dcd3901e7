"""The fault suite (`make faults`): hostile mail, killed syncs, restarted servers, concurrent workers.

Every case runs against real servers (Dovecot, PostgreSQL, SQLite files) and the real `replydesk sync`
command, and checks the same thing: every mail in the mailbox ends up exactly once as a message, an
`unparsed` message or a quarantined mail (or is recognised as a duplicate of one), and no process
crashes. It prints one table (Markdown); `python -m evals.faults --help` lists the knobs.

- corpus: the hostile-mail corpus mixed into a mailbox, synced into SQLite and PostgreSQL; time against
  the same number of normal mails (at most 3x), peak memory of the sync process;
- sigkill: `replydesk sync` killed at random moments over a 3,000-mail mailbox, then run to the end;
- restarts: Dovecot restarted mid-sync; PostgreSQL restarted mid-sync (`pg_ctlcluster`, this suite only);
- workers: two `replydesk sync` processes on one PostgreSQL database and the same mailboxes;
- send: the SMTP crash injections of `evals.faults_send`.

`hostile_accounting` is shared with the fast version in the test suite.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import func, select

from engine.db import Database
from engine.db.models import Mailbox, Message, QuarantinedMail, SyncRun
from engine.services.inbox import IncomingMail, prepare_mails
from engine.settings import Settings
from engine.sync.runner import sync_mailbox
from evals.databases import BACKENDS, throwaway_database

REPO_ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 1800


# ---- accounting ---------------------------------------------------------------------------------------------


def mixed_mailbox(hostile: Sequence[bytes], normal: Sequence[bytes], seed: int = 0) -> list[bytes]:
    """Hostile and normal mails shuffled together (deterministic)."""
    mails = [*hostile, *normal]
    random.Random(seed).shuffle(mails)
    return mails


def expected_duplicates(mails: Sequence[bytes]) -> int:
    """Mails whose dedupe key an earlier one already has (duplicate Message-IDs): stored once, by the parser's
    own keys, computed here independently of the sync."""
    keys = [p.key for p in prepare_mails(IncomingMail(raw, "count") for raw in mails)]
    return len(keys) - len(set(keys))


@dataclass(frozen=True)
class Accounting:
    mails: int
    messages: int  # message rows from this mailbox (parsed or `unparsed`)
    unparsed: int
    quarantined: int
    duplicates: int  # expected from the mails themselves
    uids_twice: int  # UIDs with more than one row: stored twice
    last_uid: int
    running: int  # sync runs never closed

    @property
    def lost(self) -> int:
        return self.mails - self.messages - self.quarantined - self.duplicates

    @property
    def sound(self) -> bool:
        return self.lost == 0 and self.uids_twice == 0 and self.last_uid >= self.mails and self.running == 0


def hostile_accounting(db: Database, mailbox_id: int, mails: Sequence[bytes]) -> Accounting:
    with db.read() as session:
        sources = list(session.scalars(select(Message.source).where(Message.mailbox_id == mailbox_id)))
        uids = [int(s.rsplit(":", 1)[1]) for s in sources if s]
        unparsed = session.scalar(
            select(func.count()).where(Message.mailbox_id == mailbox_id, Message.kind == "unparsed")
        )
        quarantined = session.scalar(select(func.count()).where(QuarantinedMail.mailbox_id == mailbox_id))
        running = session.scalar(
            select(func.count()).where(SyncRun.mailbox_id == mailbox_id, SyncRun.status == "running")
        )
        last_uid = session.get_one(Mailbox, mailbox_id).last_uid
    return Accounting(
        mails=len(mails),
        messages=len(sources),
        unparsed=int(unparsed or 0),
        quarantined=int(quarantined or 0),
        duplicates=expected_duplicates(mails),
        uids_twice=len(uids) - len(set(uids)),
        last_uid=last_uid,
        running=int(running or 0),
    )


# ---- processes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildRun:
    returncode: int
    seconds: float  # the whole command
    sync_seconds: float  # the sync itself, without the interpreter's start-up
    peak_mb: float
    stderr: str

    @property
    def crashed(self) -> bool:
        return self.returncode not in (0, 1) or "Traceback" in self.stderr


def _environment(db: Database, settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HUB_OFFLINE": "1",
        "REPLYDESK_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        "REPLYDESK_SECRET_KEY": settings.secret_key or "",
        "REPLYDESK_DATA_DIR": str(settings.data_dir),
        "REPLYDESK_NLP": "fake",
        "REPLYDESK_BACKFILL_DAYS": "0",
        **extra,
    }


# `replydesk sync --once` (the console script's own entry point), reporting its peak memory on exit: the
# kernel's ru_maxrss of a child also counts the parent's memory at the fork, VmHWM only the child's.
# Its own time is reported too: the interpreter's start-up (a second or two) is the same for any mailbox.
_SYNC = (
    "import sys, time\n"
    "from engine.cli import main\n"
    "started = time.monotonic()\n"
    "code = main(['sync', '--once'])\n"
    "sys.stderr.write(f'SECONDS {time.monotonic() - started:.3f}\\n')\n"
    "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "sys.stderr.write('PEAK ' + peak.split()[1] + '\\n')\n"
    "sys.exit(code)\n"
)


def _spawn_sync(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _SYNC],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _reap(process: subprocess.Popen[str], started: float) -> ChildRun:
    """Wait for the child; its peak memory is the VmHWM it reported (KiB)."""
    stderr = process.stderr.read() if process.stderr else ""
    process.wait()
    reported = dict(line.split(" ", 1) for line in stderr.splitlines() if line.startswith(("PEAK ", "SECONDS ")))
    peak_mb = int(reported["PEAK"]) / 1024 if "PEAK" in reported else float("nan")
    seconds = time.monotonic() - started
    sync_seconds = float(reported.get("SECONDS", seconds))
    return ChildRun(process.returncode, seconds, sync_seconds, peak_mb, stderr)


def run_sync(env: dict[str, str]) -> ChildRun:
    started = time.monotonic()
    return _reap(_spawn_sync(env), started)


# ---- fixtures for the runner --------------------------------------------------------------------------------


@contextmanager
def _dovecot() -> Iterator[Any]:
    from tests.servers import DovecotServer

    with DovecotServer() as server:
        yield server


def _settings(folder: Path) -> Settings:
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    return Settings(data_dir=data, nlp_backend="fake", secret_key=Fernet.generate_key().decode(), backfill_days=0)


def _mailbox(db: Database, settings: Settings, dovecot: Any, mails: Sequence[bytes], name: str | None = None) -> int:
    from tests.servers import make_mailbox

    user = dovecot.new_user()
    dovecot.append(user, list(mails))
    return make_mailbox(db, settings, dovecot, user, name=name)


# ---- the cases ----------------------------------------------------------------------------------------------


def corpus_case(
    backend: str, hostile: Sequence[bytes], folder: Path, dovecot: Any, *, full_size: bool
) -> dict[str, object]:
    """The corpus against the same number of normal mails. At pattern scale the time must stay within 3x;
    at full size (1.6 GB against a few MB) the time is bound by the bytes, so throughput is reported too."""
    from tests.servers import relay_mails

    settings = _settings(folder)
    with throwaway_database(backend, folder) as db:
        normal = relay_mails(len(hostile))
        normal_id = _mailbox(db, settings, dovecot, normal, name="normal")
        hostile_id = _mailbox(db, settings, dovecot, hostile, name="hostile")
        env = _environment(db, settings)
        # Each mailbox synced alone, by the real command; the normal one sets the pace to compare with.
        with db.transaction() as session:
            session.get_one(Mailbox, hostile_id).enabled = False
        normal_run = run_sync(env)
        with db.transaction() as session:
            session.get_one(Mailbox, hostile_id).enabled = True
            session.get_one(Mailbox, normal_id).enabled = False
        hostile_run = run_sync(env)
        accounting = hostile_accounting(db, hostile_id, hostile)
    ratio = hostile_run.sync_seconds / max(normal_run.sync_seconds, 1e-6)
    hostile_mb, normal_mb = sum(map(len, hostile)) / 1e6, sum(map(len, normal)) / 1e6
    pace = (
        f"; {hostile_mb / hostile_run.sync_seconds:.1f} MB/s vs {normal_mb / normal_run.sync_seconds:.1f} MB/s normal"
        if full_size
        else ""
    )
    return {
        "case": f"{len(hostile)} hostile mails ({hostile_mb:,.0f} MB) through IMAP · {backend}",
        "result": (
            f"crashes {int(hostile_run.crashed)}, lost {accounting.lost}, stored twice {accounting.uids_twice}; "
            f"{accounting.messages} messages ({accounting.unparsed} unparsed), {accounting.quarantined} "
            f"quarantined, {accounting.duplicates} duplicates; sync {hostile_run.sync_seconds:.1f} s vs "
            f"{normal_run.sync_seconds:.1f} s for as many normal mails ({ratio:.1f}x){pace}; peak memory of the "
            f"sync {hostile_run.peak_mb:.0f} MB (normal: {normal_run.peak_mb:.0f} MB)"
        ),
        "ok": accounting.sound and not hostile_run.crashed and (full_size or ratio <= 3.0),
        "detail": hostile_run.stderr[-2000:] if hostile_run.crashed else "",
    }


def sigkill_case(backend: str, folder: Path, dovecot: Any, *, mails: int, kills: int, seed: int) -> dict[str, object]:
    from tests.servers import relay_mails

    rng = random.Random(seed)
    settings = _settings(folder)
    raws = relay_mails(mails)
    with throwaway_database(backend, folder) as db:
        mailbox_id = _mailbox(db, settings, dovecot, raws)
        env = _environment(db, settings, REPLYDESK_SYNC_BATCH="20")
        killed = mid_work = 0
        while mid_work < kills and _mark(db, mailbox_id) < mails:
            before = _runs(db, mailbox_id)
            process = _spawn_sync(env)
            deadline = time.monotonic() + 60
            # Wait until this run has started work (its run row exists), then kill it at a random moment.
            while process.poll() is None and _runs(db, mailbox_id) == before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.8))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
                mid_work += _runs(db, mailbox_id) > before
            process.wait()
            if process.stderr is not None:
                process.stderr.close()
        final = run_sync(env)
        again = run_sync(env)  # a second pass finds nothing new and closes nothing left behind
        accounting = hostile_accounting(db, mailbox_id, raws)
        with db.transaction() as session:
            interrupted = session.scalar(
                select(func.count()).where(SyncRun.mailbox_id == mailbox_id, SyncRun.status == "interrupted")
            )
    ok = accounting.sound and mid_work >= kills and not final.crashed and not again.crashed
    return {
        "case": f"SIGKILL of `replydesk sync` at random moments, {mails:,} mails · {backend}",
        "result": (
            f"{killed} kills ({mid_work} mid-sync), {interrupted} runs closed as interrupted; stored "
            f"{accounting.messages:,} of "
            f"{mails:,}, lost {accounting.lost}, stored twice {accounting.uids_twice}, left running "
            f"{accounting.running}"
        ),
        "ok": ok,
        "detail": final.stderr[-2000:] if final.crashed else "",
    }


def _runs(db: Database, mailbox_id: int) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).where(SyncRun.mailbox_id == mailbox_id)) or 0)


def _mark(db: Database, mailbox_id: int) -> int:
    with db.read() as session:
        return session.get_one(Mailbox, mailbox_id).last_uid


def _restart_case(
    backend: str, folder: Path, dovecot: Any, what: str, restart: Callable[[], None], *, mails: int
) -> dict[str, object]:
    from tests.servers import relay_mails

    settings = _settings(folder).with_overrides(sync_batch_size=50)
    raws = relay_mails(mails)
    with throwaway_database(backend, folder) as db:
        mailbox_id = _mailbox(db, settings, dovecot, raws)
        done: list[int] = []

        def once(last_uid: int) -> None:
            if not done and last_uid >= mails // 3:
                done.append(last_uid)
                restart()

        first = sync_mailbox(db, mailbox_id, settings, on_batch=once)
        attempts = [first.status]
        for _ in range(3):  # the next runs complete it (the first may still meet a dropped connection)
            summary = sync_mailbox(db, mailbox_id, settings)
            attempts.append(summary.status)
            if summary.status == "ok":
                break
        accounting = hostile_accounting(db, mailbox_id, raws)
    return {
        "case": f"{what} restarted mid-sync, {mails} mails · {backend}",
        "result": (
            f"runs {' → '.join(attempts)} (first error: {first.error_code or '-'}); lost {accounting.lost}, "
            f"stored twice {accounting.uids_twice}, left running {accounting.running}"
        ),
        "ok": accounting.sound and bool(done) and attempts[-1] == "ok",
        "detail": "",
    }


def restart_postgresql() -> None:
    """Restart the local cluster (Debian's `pg_ctlcluster`; the version is the one installed)."""
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").is_dir() else []
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1] if versions else "15", "main", "restart"],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def workers_case(folder: Path, dovecot: Any, *, mailboxes: int, mails: int) -> dict[str, object]:
    from tests.servers import relay_mails

    settings = _settings(folder)
    with throwaway_database("postgresql", folder) as db:
        boxes = {}
        for index in range(mailboxes):
            raws = relay_mails(mails)
            boxes[_mailbox(db, settings, dovecot, raws, name=f"box{index}")] = raws
        env = _environment(db, settings, REPLYDESK_SYNC_BATCH="25")
        runs: list[ChildRun] = []
        for _ in range(2):  # two rounds of two concurrent workers
            started = time.monotonic()
            pair = [_spawn_sync(env) for _ in range(2)]
            runs += [_reap(process, started) for process in pair]
        runs.append(run_sync(env))
        accountings = [hostile_accounting(db, box, raws) for box, raws in boxes.items()]
        with db.transaction() as session:
            fetched = session.scalar(select(func.sum(SyncRun.fetched))) or 0
            duplicates = session.scalar(select(func.sum(SyncRun.duplicates))) or 0
    total = mailboxes * mails
    return {
        "case": f"two `replydesk sync` workers, one PostgreSQL database, {mailboxes} mailboxes × {mails} mails",
        "result": (
            f"fetched {fetched} for {total} mails, stored {sum(a.messages for a in accountings)}, seen twice "
            f"{duplicates}, lost {sum(a.lost for a in accountings)}, crashes {sum(r.crashed for r in runs)}"
        ),
        "ok": fetched == total
        and duplicates == 0
        and all(a.sound for a in accountings)
        and not any(r.crashed for r in runs),
        "detail": "",
    }


def send_rows(rounds: int) -> list[dict[str, object]]:
    try:
        from evals.faults_send import run_send_faults
    except ImportError:
        return [
            {
                "case": "SMTP crash injections",
                "result": "TODO: evals/faults_send.py is missing",
                "ok": False,
                "detail": "",
            }
        ]
    try:
        results = run_send_faults(rounds)
    except Exception as exc:  # reported as a failed row: the sync cases above still count
        return [{"case": "SMTP crash injections", "result": f"the run failed: {exc}", "ok": False, "detail": ""}]
    rows = []
    for row in results:
        bad = bool(row["double_sends"] or row["lost"] or row[str(row["expected"])] != row["runs"])
        rows.append(
            {
                "case": f"SMTP crash: {row['case']}",
                "result": (
                    f"{row['runs']} runs: {row['sent']} sent, {row['unknown']} unknown, "
                    f"{row['double_sends']} sent twice, {row['lost']} lost (expected: {row['expected']})"
                ),
                "ok": not bad,
                "detail": "",
            }
        )
    return rows


# ---- the command --------------------------------------------------------------------------------------------


def _table(rows: list[dict[str, object]]) -> str:
    lines = ["| Case | Result | Holds |", "| --- | --- | --- |"]
    lines += [f"| {r['case']} | {r['result']} | {'yes' if r['ok'] else '**NO**'} |" for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.faults", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="hostile mails in the corpus (default 1000)")
    parser.add_argument(
        "--full-size", action="store_true", help="also the full-size corpus: 25 MB attachments, 5 MB bodies"
    )
    parser.add_argument("--sigkill-mails", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--send-rounds", type=int, default=20)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--only", default="corpus,sigkill,restarts,workers,send", help="comma-separated cases to run")
    parser.add_argument("--no-postgresql-restart", action="store_true", help="skip restarting the local cluster")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    backends = [b for b in args.backends.split(",") if b]
    rows: list[dict[str, object]] = []

    def report(row: dict[str, object]) -> None:
        rows.append(row)
        print(f"{'ok ' if row['ok'] else 'BAD'} {row['case']}: {row['result']}", file=sys.stderr, flush=True)
        if row["detail"]:
            print(str(row["detail"]), file=sys.stderr, flush=True)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp, _dovecot() as dovecot:
        folder = Path(tmp)
        if "corpus" in only:
            from evals.hostile_mail import generate_corpus

            for full_size in (False, True) if args.full_size else (False,):
                hostile = [m.raw for m in generate_corpus(args.count, full_size=full_size)]
                for backend in backends:
                    where = folder / f"corpus-{backend}-{'full' if full_size else 'fast'}"
                    report(corpus_case(backend, hostile, where, dovecot, full_size=full_size))
                del hostile
        if "sigkill" in only:
            for backend in backends:
                report(
                    sigkill_case(
                        backend, folder / f"kill-{backend}", dovecot, mails=args.sigkill_mails, kills=args.kills, seed=1
                    )
                )
        if "restarts" in only:
            for backend in backends:
                report(_restart_case(backend, folder / f"dc-{backend}", dovecot, "Dovecot", dovecot.restart, mails=600))
            if "postgresql" in backends and not args.no_postgresql_restart:
                report(_restart_case("postgresql", folder / "pg", dovecot, "PostgreSQL", restart_postgresql, mails=600))
        if "workers" in only and "postgresql" in backends:
            report(workers_case(folder / "workers", dovecot, mailboxes=3, mails=400))
    if "send" in only:
        for row in send_rows(args.send_rounds):
            report(row)
    print(_table(rows))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{len(rows)} cases in {time.monotonic() - started:.0f} s; this runner's own peak memory {peak:.0f} MB")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

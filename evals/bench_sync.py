"""Sync throughput: APPEND n relay mails to a private Dovecot, then time a full sync (fetch, parse, store)
into SQLite and into PostgreSQL.

    python -m evals.bench_sync [n]      # prints JSON; needs dovecot installed and PostgreSQL on 127.0.0.1
"""

from __future__ import annotations

import imaplib
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from engine.settings import Settings
from engine.sync.runner import sync_mailbox
from evals.databases import throwaway_database
from tests.servers import DovecotServer, ImapUser, append_all, make_mailbox, relay_mails

APPEND_CONNECTIONS = 4


def _append_parallel(server: DovecotServer, user: ImapUser, mails: list[bytes]) -> None:
    def one_connection(part: list[bytes]) -> None:
        conn = imaplib.IMAP4(server.host, server.port, timeout=60)
        conn.login(user.name, user.password)
        append_all(conn, part)
        conn.logout()

    parts = [mails[i::APPEND_CONNECTIONS] for i in range(APPEND_CONNECTIONS)]
    with ThreadPoolExecutor(APPEND_CONNECTIONS) as pool:
        list(pool.map(one_connection, parts))


def bench_sync(
    n: int = 10_000, *, batch_size: int = 500, backends: tuple[str, ...] = ("sqlite", "postgresql")
) -> dict[str, Any]:
    """Messages per second for a full first sync of `n` relay mails, per database backend."""
    results: dict[str, Any] = {"n": n, "batch_size": batch_size}
    with DovecotServer() as server, tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        user = server.new_user()
        mails = relay_mails(n)
        started = time.perf_counter()
        _append_parallel(server, user, mails)
        results["append_per_s"] = round(n / (time.perf_counter() - started), 1)
        for backend in backends:
            folder = Path(tmp) / backend
            folder.mkdir()
            settings = Settings(data_dir=folder, nlp_backend="fake", sync_batch_size=batch_size)
            with throwaway_database(backend, folder) as db:
                mailbox_id = make_mailbox(db, settings, server, user, store=f"Bench {backend}")
                started, cpu_started = time.perf_counter(), time.process_time()
                summary = sync_mailbox(db, mailbox_id, settings)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            if summary.new != n:
                raise RuntimeError(f"{backend}: expected {n} new mails, got {summary.line()}")
            results[backend] = {
                "seconds": round(seconds, 2),
                "messages_per_s": round(n / seconds, 1),
                # This process's CPU only (fetch, parse, ORM): wall time on a busy machine overstates the cost.
                "messages_per_cpu_s": round(n / cpu, 1),
            }
    return results


if __name__ == "__main__":
    print(json.dumps(bench_sync(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000), indent=2))

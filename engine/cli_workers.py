"""`replydesk` commands for the background work: sync (IMAP in), send (SMTP out), the worker doing both plus
drafting and routing of new mail, and adding a mailbox.

Loops poll every `REPLYDESK_SYNC_INTERVAL` seconds and stop cleanly on SIGTERM or SIGINT: the batch or
the reply in progress is finished first, so nothing is left half done.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from engine.errors import InputError, ReplyDeskError
from engine.settings import Settings

__all__ = ["register"]

log = logging.getLogger(__name__)


class _StopFlag:
    """Set by SIGTERM/SIGINT; loops check it between units of work and sleep on it."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            print(f"stopping after the current step ({signal.Signals(signum).name})", file=sys.stderr)
            self.event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def wait(self, seconds: float) -> bool:
        return self.event.wait(seconds)


def _database(settings: Settings) -> Any:
    from engine.db import Database

    db = Database(settings.resolved_database_url)
    db.check_migrated()
    return db


def _sync_once(db: Any, settings: Settings, store: str | None) -> int:
    from engine.sync.runner import sync_all

    failures = 0
    for summary in sync_all(db, settings, store):
        print(summary.line(), file=sys.stderr if summary.status == "error" else sys.stdout, flush=True)
        failures += summary.status == "error"
    return failures


def _send_once(db: Any, settings: Settings) -> None:
    """One send pass; whatever goes wrong is reported and the worker's other steps still run."""
    from engine.send.worker import send_pending

    try:
        counts = send_pending(db, settings)
    except ReplyDeskError as exc:
        print(f"send: error: {exc}", file=sys.stderr, flush=True)
        return
    except Exception as exc:
        log.exception("send pass failed")
        print(f"send: error: {type(exc).__name__}: {exc}; the next pass tries again", file=sys.stderr, flush=True)
        return
    if any(vars(counts).values()):
        print(f"send: {counts.line()}", flush=True)


def _webhooks_once(db: Any, settings: Settings) -> None:
    """SLA events from the deadlines, then due webhook deliveries; a failure here never stops the other steps."""
    from engine.integrations.delivery import webhook_pass

    try:
        line = webhook_pass(db, settings)
    except Exception as exc:
        log.exception("webhook pass failed")
        print(f"webhooks: error: {type(exc).__name__}: {exc}; the next pass tries again", file=sys.stderr, flush=True)
        return
    if line:
        print(f"webhooks: {line}", flush=True)


def _draft_once(pipeline: Any) -> None:
    from engine.services.routing import routing_summary

    result, assignments = pipeline.run_once()
    if result.messages:
        print(f"drafting: {result.messages} buyer messages classified, {result.drafts} drafts written", flush=True)
    if any(a.agent_id is not None for a in assignments) or result.messages:
        print(routing_summary(assignments), flush=True)


def _loop(settings: Settings, step: Callable[[], object], once: bool, wake: threading.Event | None = None) -> int:
    """Run `step` every polling interval, or sooner when `wake` is set (IMAP IDLE saw new mail)."""
    if once:
        step()
        return 0
    stop = _StopFlag()
    stop.install()
    while not stop.event.is_set():
        try:
            step()
        except ReplyDeskError as exc:  # e.g. the database is down for a moment: report, wait, try again
            print(f"error: {exc}", file=sys.stderr, flush=True)
        except Exception:
            log.exception("worker step failed; trying again after the interval")
        if _pause(stop.event, wake, settings.sync_interval_seconds):
            break
    return 0


def _pause(stop: threading.Event, wake: threading.Event | None, seconds: float) -> bool:
    """Wait up to `seconds`, ending early on new mail; True when asked to stop."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if stop.wait(min(left, 0.5)):
            return True
        if wake is not None and wake.is_set():
            wake.clear()
            break
    return stop.is_set()


def _idle_wake(db: Any, settings: Settings) -> threading.Event:
    from engine.sync.idle import IdleWatcher, watch_targets

    return IdleWatcher(watch_targets(db, settings)).start().wake


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    if args.once:
        return 1 if _sync_once(db, settings, args.store) else 0
    return _loop(settings, lambda: _sync_once(db, settings, args.store), once=False, wake=_idle_wake(db, settings))


def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    return _loop(settings, lambda: _send_once(db, settings), once=args.once)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from engine.services.pipeline import PipelineWorker

    db = _database(settings)
    pipeline = PipelineWorker(db, settings)

    def everything() -> None:
        _send_once(db, settings)  # replies first: their deadline is the tighter one
        _sync_once(db, settings, None)
        _send_once(db, settings)
        _draft_once(pipeline)  # last: a failing model must not hold up mail in or out
        _webhooks_once(db, settings)  # after drafting, so this pass's events go out in it

    return _loop(settings, everything, once=args.once, wake=None if args.once else _idle_wake(db, settings))


class _RefusePassword(argparse.Action):
    """`--password` exists only to refuse it (argv is visible to every user of the machine)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error("never pass a password on the command line: use --password-env VAR, or leave it out to be asked")


def _secret(env_var: str | None, prompt: str) -> str:
    if env_var:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env_var):
            # Probably the password itself typed in the wrong place: do not echo it.
            raise InputError("--password-env takes the NAME of an environment variable, e.g. IMAP_PASSWORD.")
        value = os.environ.get(env_var)
        if not value:
            raise InputError(f"The environment variable {env_var} is not set or empty. Export the password there.")
        return value
    if not sys.stdin.isatty():
        raise InputError("No password given: pass --password-env VAR (the name of an environment variable).")
    return getpass.getpass(prompt)


def cmd_mailbox_add(args: argparse.Namespace, settings: Settings) -> int:
    from engine.services.mailboxes import add_mailbox, mailbox_view
    from engine.services.stores import get_store

    password = _secret(args.password_env, f"IMAP password for {args.user}: ")
    smtp_password = _secret(args.smtp_password_env, "SMTP password: ") if args.smtp_password_env else None
    db = _database(settings)
    with db.transaction() as session:
        mailbox = add_mailbox(
            session,
            settings,
            get_store(session, args.store),
            name=args.name or args.user,
            imap_host=args.host,
            imap_port=args.port,
            imap_security=args.security,
            username=args.user,
            password=password,
            folder=args.folder,
            sent_folder=args.sent_folder,
            smtp_host=args.smtp_host,
            smtp_port=args.smtp_port,
            smtp_security=args.smtp_security,
            smtp_username=args.smtp_user,
            smtp_password=smtp_password,
        )
        view = mailbox_view(session, settings, mailbox)
    print(f"mailbox {view.name} (id {view.id}) for {view.store}: {view.imap}; password {view.password}")
    return 0


def register(add: Callable[[str, Any, str], argparse.ArgumentParser]) -> None:
    sync = add("sync", cmd_sync, "fetch new mail from the stores' mailboxes (IMAP), every interval or --once")
    sync.add_argument("--store", help="only this store's mailboxes")
    sync.add_argument("--once", action="store_true", help="one pass, then exit (exit code 1 if a mailbox failed)")
    send = add("send", cmd_send, "send approved replies (SMTP), every interval or --once")
    send.add_argument("--once", action="store_true", help="one pass, then exit")
    worker = add("worker", cmd_worker, "sync, send, draft and route in one loop until SIGTERM/SIGINT")
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    box = add("mailbox-add", cmd_mailbox_add, "add a mailbox to a store (password from an env var or a prompt)")
    box.add_argument("store", help="store name")
    box.add_argument("--name", help="mailbox name (default: the user name)")
    box.add_argument("--host", required=True, help="IMAP host")
    box.add_argument("--port", type=int, default=993)
    box.add_argument("--security", choices=("ssl", "starttls", "none"), default="ssl")
    box.add_argument("--user", required=True, help="IMAP user name")
    box.add_argument("--password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS)
    box.add_argument("--password-env", metavar="VAR", help="environment variable holding the password (else prompt)")
    box.add_argument("--folder", default="INBOX", help="folder the relay mail arrives in")
    box.add_argument("--sent-folder", default="Sent", help="folder for copies of sent replies")
    box.add_argument("--smtp-host", help="SMTP host for replies")
    box.add_argument("--smtp-port", type=int, default=587)
    box.add_argument("--smtp-security", choices=("ssl", "starttls", "none"), default="starttls")
    box.add_argument("--smtp-user", help="SMTP user name (default: the IMAP user)")
    box.add_argument("--smtp-password-env", metavar="VAR", help="env var with the SMTP password (default: IMAP's)")

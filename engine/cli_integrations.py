"""`replydesk` commands for integrations: webhook endpoints, API tokens, the HTTP API and the full export."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.settings import Settings

__all__ = ["register"]


def _database(settings: Settings) -> Any:
    from engine.db import Database

    db = Database(settings.resolved_database_url)
    db.check_migrated()
    return db


def cmd_webhook_add(args: argparse.Namespace, settings: Settings) -> int:
    from engine.integrations.webhooks import add_endpoint

    db = _database(settings)
    with db.transaction() as session:
        endpoint, secret = add_endpoint(
            session, settings, None, args.url, args.events, store_names=args.store, include_text=args.include_text
        )
        endpoint_id, events = endpoint.id, ", ".join(endpoint.events)
    print(f"webhook endpoint {endpoint_id}: {args.url} ({events})")
    print(f"signing secret (shown once, give it to the receiver): {secret}")
    return 0


def cmd_webhook_list(args: argparse.Namespace, settings: Settings) -> int:
    from engine.integrations.webhooks import list_endpoints

    db = _database(settings)
    with db.read() as session:
        endpoints = list_endpoints(session)
    if not endpoints:
        print("no webhook endpoints; add one with `replydesk webhook-add URL --events ...`")
    for e in endpoints:
        state = "active" if e.active else f"disabled{': ' + e.disabled_reason if e.disabled_reason else ''}"
        stores = ", ".join(e.stores) or "all stores"
        print(f"{e.id}\t{e.url}\t{state}\t{','.join(e.events)}\t{stores}\ttext={'yes' if e.include_text else 'no'}")
        print(f"\tdeliveries: {e.delivered} delivered, {e.pending} pending, {e.failed} given up")
    return 0


def cmd_webhook_test(args: argparse.Namespace, settings: Settings) -> int:
    from engine.integrations.delivery import send_test

    status, error = send_test(_database(settings), settings, args.id)
    if error is None:
        print(f"test event delivered: HTTP {status}")
        return 0
    print(f"test event not delivered: {error}", file=sys.stderr)
    return 1


def cmd_webhook_replay(args: argparse.Namespace, settings: Settings) -> int:
    from engine.integrations.webhooks import replay_delivery

    with _database(settings).transaction() as session:
        replay_delivery(session, None, args.delivery)
    print(f"delivery {args.delivery} queued again; the worker sends it on its next pass")
    return 0


def cmd_token_add(args: argparse.Namespace, settings: Settings) -> int:
    from engine.integrations.tokens import create_token

    with _database(settings).transaction() as session:
        _token, plaintext = create_token(session, None, args.name, args.role, args.store)
    print(f"API token {args.name} ({args.role}; {', '.join(args.store)}), shown once:")
    print(plaintext)
    return 0


def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    from engine.integrations.tokens import list_tokens

    with _database(settings).read() as session:
        tokens = list_tokens(session)
    for t in tokens:
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
        state = "revoked" if t.revoked else "active"
        print(f"{t.name}\t{t.role}\t{', '.join(t.stores)}\t{state}\tlast used {used}")
    return 0


def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from engine.integrations.tokens import revoke_token

    with _database(settings).transaction() as session:
        revoke_token(session, None, args.name)
    print(f"API token {args.name} revoked")
    return 0


def _since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(f"--since takes a date like 2026-12-01 (or 2026-12-01T08:00), not {raw!r}.") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from engine.integrations.export import export_lines

    since = _since(args.since)
    db = _database(settings)
    count = 0
    if args.out is None:
        with db.read() as session:
            for line in export_lines(session, store=args.store, since=since):
                sys.stdout.write(line)
                count += 1
        print(f"{count} conversations exported", file=sys.stderr)
        return 0
    out = Path(args.out)
    partial = out.with_name(out.name + ".partial")  # a broken export never replaces a good file
    with partial.open("w", encoding="utf-8") as handle, db.read() as session:
        for line in export_lines(session, store=args.store, since=since):
            handle.write(line)
            count += 1
    os.replace(partial, out)
    print(f"{count} conversations exported to {out}", file=sys.stderr)
    return 0


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from engine.integrations.api import create_app

    app = create_app(_database(settings), settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def register(add: Callable[[str, Any, str], argparse.ArgumentParser]) -> None:
    hook = add("webhook-add", cmd_webhook_add, "send signed events to a URL (prints the secret once)")
    hook.add_argument("url")
    hook.add_argument("--events", type=_list, required=True, help="comma-separated event types, or `all`")
    hook.add_argument("--store", action="append", default=[], help="only this store's events (repeatable)")
    hook.add_argument("--include-text", action="store_true", help="include message and reply texts")
    add("webhook-list", cmd_webhook_list, "list webhook endpoints and their deliveries")
    test = add("webhook-test", cmd_webhook_test, "send a test event to an endpoint now")
    test.add_argument("id", type=int)
    replay = add("webhook-replay", cmd_webhook_replay, "queue a webhook delivery again")
    replay.add_argument("delivery", type=int, help="delivery id (see the Integrations page)")
    token = add("token-add", cmd_token_add, "create an API token (prints it once)")
    token.add_argument("--name", required=True)
    token.add_argument("--role", choices=("agent", "lead"), default="agent")
    token.add_argument("--store", action="append", required=True, help="store name (repeatable)")
    add("token-list", cmd_token_list, "list API tokens")
    revoke = add("token-revoke", cmd_token_revoke, "revoke an API token")
    revoke.add_argument("name")
    export = add("export", cmd_export, "export conversations as JSON Lines (one conversation per line)")
    export.add_argument("--store", help="only this store")
    export.add_argument("--since", help="only conversations with activity since this date (UTC)")
    export.add_argument("--out", help="file to write (default: standard output)")
    api = add("api", cmd_api, "serve the HTTP API (bearer tokens; OpenAPI at /docs)")
    api.add_argument("--port", type=int, default=8502)
    api.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")

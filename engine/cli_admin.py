"""Administrative `replydesk` commands: stores and users."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from engine.settings import Settings


def cmd_store_add(args: argparse.Namespace, settings: Settings) -> int:
    from engine.db import Database
    from engine.services.stores import ensure_store

    db = Database(settings.resolved_database_url)
    db.check_migrated()
    with db.transaction() as session:
        store = ensure_store(
            session,
            args.name,
            region=args.region,
            marketplaces=args.marketplaces.split(","),
            sender_address=args.sender,
        )
        print(f"store {store.name} (id {store.id})")
    return 0


def cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    from engine.db import Database
    from engine.services.agents import NewPassword, create_agent
    from engine.services.stores import get_store
    from engine.workflow.permissions import Role

    db = Database(settings.resolved_database_url)
    db.check_migrated()
    password = NewPassword.of(args.password) if args.password else NewPassword.none()
    with db.transaction() as session:
        stores = [get_store(session, name) for name in args.stores.split(",") if name]
        agent = create_agent(
            session, args.username, password=password, role=Role(args.role), stores=stores,
            languages=[x for x in args.languages.split(",") if x],
        )  # fmt: skip
        print(f"user {agent.username} ({agent.role}) on {len(stores)} store(s)")
    return 0


def register(add: Callable[[str, Any, str], argparse.ArgumentParser]) -> None:
    store = add("store-add", cmd_store_add, "add a store (seller account)")
    store.add_argument("name")
    store.add_argument("--region", choices=("na", "eu", "fe"), default="eu")
    store.add_argument("--marketplaces", default="", help="comma-separated codes, e.g. UK,DE,FR")
    store.add_argument("--sender", help="the sender address approved in Seller Central")
    user = add("user-add", cmd_user_add, "add a user (agent, lead or admin)")
    user.add_argument("username")
    user.add_argument("--password", required=True)
    user.add_argument("--role", choices=("agent", "lead", "admin"), default="agent")
    user.add_argument("--stores", default="", help="comma-separated store names")
    user.add_argument("--languages", default="", help="reply languages, e.g. en,de")

"""Administrative `replydesk` commands: stores and users."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any, TextIO

from engine.errors import InputError
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
    plain = "" if args.sso_only else read_password(sys.stdin)
    password = NewPassword.of(plain) if plain else NewPassword.none()  # hashed before the transaction
    with db.transaction() as session:
        stores = [get_store(session, name) for name in args.stores.split(",") if name]
        agent = create_agent(
            session, args.username, password=password, role=Role(args.role), stores=stores,
            languages=[x for x in args.languages.split(",") if x],
        )  # fmt: skip
        print(f"user {agent.username} ({agent.role}) on {len(stores)} store(s)")
    return 0


def read_password(stdin: TextIO) -> str:
    """The new password: asked twice without echo on a terminal, else one line of standard input (never a
    command-line argument, which the process list and the shell history would keep)."""
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat it: ") != first:
            raise InputError("The two passwords differ; run the command again.")
        return first
    line = stdin.readline().rstrip("\r\n")
    if not line:
        raise InputError(
            "No password on standard input; pipe one line (e.g. from a password manager) or pass --sso-only."
        )
    return line


def cmd_user_unlock(args: argparse.Namespace, settings: Settings) -> int:
    """Let an account locked out by wrong passwords try again."""
    from engine.services.sign_in import unlock

    return _admin_action(args, settings, unlock, "unlocked")


def cmd_user_unbind(args: argparse.Namespace, settings: Settings) -> int:
    """Unbind an account's single sign-on identity (its next sign-in binds a new one)."""
    from engine.services.accounts import unbind_identity

    return _admin_action(args, settings, unbind_identity, "unbound from its single sign-on identity")


def _admin_action(args: argparse.Namespace, settings: Settings, action: Callable[..., None], done: str) -> int:
    from sqlalchemy import select

    from engine.db import Database
    from engine.db.models import Agent
    from engine.workflow.permissions import Principal, Role

    db = Database(settings.resolved_database_url)
    db.check_migrated()
    system = Principal(agent_id=0, role=Role.ADMIN, store_ids=frozenset())  # whoever runs the command line
    with db.transaction() as session:
        agent_id = session.scalar(select(Agent.id).where(Agent.username == args.username))
        if agent_id is None:
            raise InputError(f"No user is named {args.username!r}; check the spelling (it is case-sensitive).")
        action(session, system, agent_id)
    print(f"user {args.username} {done}")
    return 0


def register(add: Callable[[str, Any, str], argparse.ArgumentParser]) -> None:
    store = add("store-add", cmd_store_add, "add a store (seller account)")
    store.add_argument("name")
    store.add_argument("--region", choices=("na", "eu", "fe"), default="eu")
    store.add_argument("--marketplaces", default="", help="comma-separated codes, e.g. UK,DE,FR")
    store.add_argument("--sender", help="the sender address approved in Seller Central")
    user = add("user-add", cmd_user_add, "add a user (agent, lead or admin)")
    user.add_argument("username")
    user.add_argument(
        "--sso-only",
        action="store_true",
        help="no password: single sign-on only (else it is prompted or read from stdin)",
    )
    user.add_argument("--role", choices=("agent", "lead", "admin"), default="agent")
    user.add_argument("--stores", default="", help="comma-separated store names")
    user.add_argument("--languages", default="", help="reply languages, e.g. en,de")
    unlock = add("user-unlock", cmd_user_unlock, "unlock a user locked out by wrong passwords")
    unlock.add_argument("username")
    unbind = add("user-unbind", cmd_user_unbind, "unbind a user's single sign-on identity")
    unbind.add_argument("username")

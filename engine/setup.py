"""First-run set-up: schema, seed knowledge, and (for `make run`) the demo stores, users and inbox."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from sqlalchemy import func, select

from engine.components import build_components, read_knowledge
from engine.db import Database
from engine.db.base import utcnow
from engine.db.models import Agent, Store
from engine.demo import HISTORY_FILE, load_history, read_history
from engine.errors import MailParseError
from engine.mail import RawMail, iter_raw_mails, parse_mail
from engine.services.agents import NewPassword, create_agent
from engine.services.importing import import_raw_mails
from engine.services.knowledge import seed_knowledge
from engine.services.pipeline import process_and_route
from engine.services.routing import routing_summary
from engine.services.stores import ensure_store
from engine.settings import Settings
from engine.taxonomy import MARKETPLACES
from engine.workflow.permissions import Role

# The demo's three stores, by SP-API region: a typical cross-border seller's set-up.
DEMO_STORES = {
    "na": ("Demo Americas", "support@americas.demo-seller.example"),
    "eu": ("Demo Europe", "support@europe.demo-seller.example"),
    "fe": ("Demo Japan", "support@japan.demo-seller.example"),
}
REGION_OF = {
    **{code: "na" for code in ("US", "CA", "MX", "BR")},
    **{code: "fe" for code in ("JP",)},
}
DEMO_WINDOW = timedelta(hours=30)
# Demo accounts, documented in the README; never use them outside the demo.
DEMO_USERS = (
    ("admin", "demo-admin", Role.ADMIN, "Ada Admin", ("en", "de")),
    ("lead", "demo-lead", Role.LEAD, "Lee Lead", ("en", "fr", "es")),
    ("agent", "demo-agent", Role.AGENT, "Mia Agent", ("en", "de", "it")),
    ("agent.zh", "demo-agent", Role.AGENT, "王芳", ("en", "ja", "zh")),
)


def _region(marketplace: str | None) -> str:
    return REGION_OF.get(marketplace or "", "eu")


def demo_clock(oldest: datetime, newest: datetime, now: datetime) -> Callable[[datetime], datetime]:
    """Spread the demo's mails, in their order, over the last 30 hours: the queue then shows overdue,
    at-risk and comfortable deadlines side by side, whenever the demo is loaded."""
    span = (newest - oldest) or timedelta(seconds=1)
    start, window = now - DEMO_WINDOW, DEMO_WINDOW - timedelta(minutes=10)
    return lambda received: start + window * ((received - oldest) / span)


def load_demo(db: Database, settings: Settings) -> Iterator[str]:
    passwords = {username: NewPassword.of(password) for username, password, *_ in DEMO_USERS}  # hashed up front
    with db.transaction() as session:
        if session.scalar(select(func.count()).select_from(Store)):
            yield "stores exist already: demo inbox not loaded"
            return
        stores = {}
        for region, (name, sender) in DEMO_STORES.items():
            markets = [code for code in MARKETPLACES if _region(code) == region]
            stores[region] = ensure_store(session, name, region=region, marketplaces=markets, sender_address=sender)
        if not session.scalar(select(func.count()).select_from(Agent)):
            for username, _, role, display, languages in DEMO_USERS:
                assigned = list(stores.values()) if username != "agent" else [stores["eu"]]
                create_agent(
                    session,
                    username,
                    password=passwords[username],
                    role=role,
                    display_name=display,
                    stores=assigned,
                    languages=languages,
                    ui_language="zh" if username == "agent.zh" else "en",
                    demo=True,
                )
        store_ids = {region: store.id for region, store in stores.items()}

    groups: dict[str, list[RawMail]] = defaultdict(list)
    dates: list[datetime] = []
    for mail in iter_raw_mails([settings.knowledge_dir / "demo"]):
        try:
            parsed = parse_mail(mail.raw)
        except MailParseError:
            groups["eu"].append(mail)
            continue
        groups[_region(parsed.marketplace)].append(mail)
        if parsed.received_at:
            dates.append(parsed.received_at)
    retime = demo_clock(min(dates), max(dates), utcnow()) if dates else None
    for region, mails in sorted(groups.items()):
        summary = import_raw_mails(db, store_ids[region], mails, retime=retime)
        yield f"{DEMO_STORES[region][0]}: {summary.line()}"
    entries = read_history(settings.knowledge_dir / "demo" / HISTORY_FILE)
    with db.transaction() as session:
        history = load_history(session, entries, now=utcnow())
    yield history.line()


def setup(settings: Settings, *, demo: bool = False) -> Iterator[str]:
    db = Database(settings.resolved_database_url)
    db.migrate()
    yield f"database ready ({db.url.split('://')[0]})"
    with db.transaction() as session:
        answers, templates = seed_knowledge(session, settings.knowledge_dir)
    yield f"knowledge base: {answers} seed answers and {templates} templates added"
    if demo:
        yield from load_demo(db, settings)
    with db.read() as session:
        knowledge = read_knowledge(session, settings.knowledge_dir)
    components = build_components(settings, knowledge)
    result, assignments = process_and_route(db, components, settings.knowledge_dir)
    yield f"pipeline: {result.messages} buyer messages classified, {result.drafts} drafts written"
    yield routing_summary(assignments)

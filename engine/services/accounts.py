"""Who is signed in, and the admin's lists of stores and agents (the Settings page).

Login itself is `log_in` (local passwords, verified outside any transaction) or `log_in_with_identity` (single
sign-on); the app keeps only the agent id in its session and rebuilds the `Principal` from the database on
every request, so a changed role or store applies at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.db.models import Agent, Mailbox, Store
from engine.db.session import Database
from engine.errors import InputError
from engine.services import audit
from engine.services.agents import (
    NewPassword,
    authenticated_agent,
    create_agent,
    principal_for,
    stored_password_hash,
    verify_password,
)
from engine.services.stores import ensure_store
from engine.taxonomy import MARKETPLACES
from engine.workflow.permissions import Action, Principal, Role, has_store, require

UI_LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    display_name: str
    username: str
    ui_language: str
    available: bool  # for new conversations (the sidebar switch)

    @classmethod
    def of(cls, agent: Agent) -> SignedIn:
        language = agent.ui_language or "en"
        return cls(principal_for(agent), agent.display_name, agent.username, language, bool(agent.available))


def signed_in(session: Session, agent_id: int) -> SignedIn | None:
    """The signed-in agent, or None when the account was removed or deactivated since login."""
    agent = session.get(Agent, agent_id)
    if agent is None or not agent.active:
        return None
    return SignedIn.of(agent)


def log_in(db: Database, username: str, password: str) -> SignedIn:
    """Check a local password (raises PermissionDenied with a retry hint) and return who signed in. The hash is
    read, verified with no transaction open (argon2 is slow on purpose), then the account is read again."""
    username = username.strip()
    with db.read() as session:
        stored = stored_password_hash(session, username)
    verify_password(stored, password)
    assert stored is not None  # verify_password refuses a missing hash
    with db.read() as session:
        return SignedIn.of(authenticated_agent(session, username, stored))


@dataclass(frozen=True)
class IdentityRefused:
    """Why a verified single sign-on identity does not get in: `code` picks the interface sentence."""

    code: str  # no_email | email_unverified | unknown_account | inactive_account | ambiguous_account
    email: str
    message: str


def log_in_with_identity(
    session: Session, claims: Mapping[str, Any], *, provider: str = "default"
) -> SignedIn | IdentityRefused:
    """Map an identity verified by an OIDC provider (the id_token's claims) to an existing, active agent.

    The rule: the `email` claim equals the agent's username, ignoring case. There is no provisioning: an
    admin creates the account first (named after the email), and role and stores come from that account,
    never from the token. An identity whose `email_verified` claim is present and not true is refused,
    since anyone can put an unverified address on an account at some providers. Both outcomes are audited;
    a refusal is returned (not raised) so the caller's transaction keeps its audit event.
    """
    email = claims.get("email")
    email = email.strip() if isinstance(email, str) else ""
    verified = claims.get("email_verified", True)
    if not email or "@" not in email:
        refusal = IdentityRefused(
            "no_email",
            email,
            "The identity provider sent no email address; ask an admin to request the email scope for ReplyDesk.",
        )
    elif verified is not True and str(verified).lower() != "true":  # some providers send "true"/"false"
        refusal = IdentityRefused(
            "email_unverified",
            email,
            f"The identity provider has not verified {email}; verify it there, then sign in again.",
        )
    else:
        matches = session.scalars(select(Agent).where(func.lower(Agent.username) == email.lower())).all()
        active = [agent for agent in matches if agent.active]
        if len(active) == 1:
            agent = active[0]
            audit.record(
                session,
                "agent.login",
                "agent",
                agent.id,
                actor_id=agent.id,
                after={"method": "oidc", "provider": provider, "email": email},
            )
            return SignedIn.of(agent)
        if len(active) > 1:
            refusal = IdentityRefused(
                "ambiguous_account",
                email,
                f"Several accounts are named {email} (differing in case only); ask an admin to rename the others.",
            )
        elif matches:
            refusal = IdentityRefused(
                "inactive_account", email, f"The account {email} is deactivated; ask an admin to reactivate it."
            )
        else:
            refusal = IdentityRefused(
                "unknown_account",
                email,
                f"No account is named {email}; ask an admin to create an account named {email}.",
            )
    audit.record(
        session,
        "agent.login_refused",
        "agent",
        None,
        after={"method": "oidc", "provider": provider, "email": email, "reason": refusal.code},
    )
    return refusal


def set_ui_language(session: Session, principal: Principal, language: str) -> None:
    if language not in UI_LANGUAGES:
        raise InputError(f"The interface speaks {', '.join(UI_LANGUAGES)}; {language!r} is not one of them.")
    agent = session.get_one(Agent, principal.agent_id)
    agent.ui_language = language


@dataclass(frozen=True)
class StoreSummary:
    id: int
    name: str
    region: str
    marketplaces: list[str]
    sender_address: str | None
    mailboxes: int


def visible_stores(session: Session, principal: Principal) -> list[StoreSummary]:
    """The stores the principal may work on (every store for an admin)."""
    require(principal, Action.VIEW_QUEUE)
    stores = session.scalars(select(Store).order_by(Store.name)).all()
    return [
        StoreSummary(s.id, s.name, s.region, list(s.marketplaces or []), s.sender_address, len(s.mailboxes))
        for s in stores
        if has_store(principal, s.id)
    ]


@dataclass(frozen=True)
class AgentSummary:
    id: int
    username: str
    display_name: str
    role: str
    stores: list[str]
    languages: list[str]
    active: bool


def _summary(agent: Agent) -> AgentSummary:
    return AgentSummary(
        agent.id,
        agent.username,
        agent.display_name,
        agent.role,
        sorted(s.name for s in agent.stores),
        list(agent.languages or []),
        agent.active,
    )


def list_agents(session: Session, principal: Principal, *, store_id: int | None = None) -> list[AgentSummary]:
    """Everyone (admin), or the active agents of one store the principal works on (to assign to)."""
    if store_id is None:
        require(principal, Action.MANAGE_USERS)
        return [_summary(a) for a in session.scalars(select(Agent).order_by(Agent.username))]
    require(principal, Action.ACT_ON_CONVERSATION, store_id=store_id)
    agents = session.scalars(select(Agent).where(Agent.active.is_(True)).order_by(Agent.display_name)).all()
    return [_summary(a) for a in agents if a.role == Role.ADMIN or store_id in {s.id for s in a.stores}]


def add_agent(
    session: Session,
    principal: Principal,
    username: str,
    *,
    password: NewPassword,
    role: Role,
    display_name: str,
    store_ids: Sequence[int],
    languages: Sequence[str] = (),
    ui_language: str = "en",
) -> AgentSummary:
    require(principal, Action.MANAGE_USERS)
    if not username.strip():
        raise InputError("A username is needed.")
    stores = list(session.scalars(select(Store).where(Store.id.in_(list(store_ids) or [-1]))))
    agent = create_agent(
        session,
        username.strip(),
        password=password,
        role=role,
        display_name=display_name.strip() or username.strip(),
        stores=stores,
        languages=languages,
        ui_language=ui_language if ui_language in UI_LANGUAGES else "en",
    )
    return _summary(agent)


def add_store(
    session: Session,
    principal: Principal,
    name: str,
    *,
    region: str,
    marketplaces: Sequence[str],
    sender_address: str | None,
) -> StoreSummary:
    require(principal, Action.MANAGE_STORES)
    if not name.strip():
        raise InputError("A store needs a name.")
    if region not in ("na", "eu", "fe"):
        raise InputError(f"Region must be na, eu or fe, got {region!r}.")
    unknown = [m for m in marketplaces if m not in MARKETPLACES]
    if unknown:
        raise InputError(f"Unknown marketplace(s) {', '.join(unknown)}; use codes like DE, US, JP.")
    if sender_address and "@" not in sender_address:
        raise InputError("The sender address must be an email address approved in Seller Central.")
    if session.scalar(select(Store).where(Store.name == name.strip())) is not None:
        raise InputError(f"A store named {name.strip()!r} exists already. Pick another name.")
    store = ensure_store(
        session, name.strip(), region=region, marketplaces=marketplaces, sender_address=sender_address or None
    )
    return StoreSummary(store.id, store.name, store.region, list(store.marketplaces), store.sender_address, 0)


def set_smtp(
    session: Session,
    principal: Principal,
    store_id: int,
    *,
    host: str,
    port: int,
    security: str = "starttls",
    username: str | None = None,
    mailbox_name: str = "default",
) -> Mailbox:
    """Point a store's outgoing mail at an SMTP server (creating its mailbox row if it has none).
    Passwords are set with the mailbox commands, which encrypt them."""
    require(principal, Action.MANAGE_STORES, store_id=store_id)
    if security not in ("ssl", "starttls", "none"):
        raise InputError(f"SMTP security must be ssl, starttls or none, got {security!r}.")
    store = session.get(Store, store_id)
    if store is None:
        raise InputError(f"Store {store_id} does not exist.")
    mailbox = session.scalar(select(Mailbox).where(Mailbox.store_id == store_id).order_by(Mailbox.id).limit(1))
    if mailbox is None:
        mailbox = Mailbox(
            store_id=store_id,
            name=mailbox_name,
            imap_host=host,
            username=username or store.sender_address or "",
        )
        session.add(mailbox)
    mailbox.smtp_host, mailbox.smtp_port, mailbox.smtp_security = host, port, security
    mailbox.smtp_username = username
    session.flush()
    return mailbox

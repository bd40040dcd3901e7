"""Who is signed in, and the admin's lists of stores and agents (the Settings page).

Login itself is `log_in` (local passwords, verified outside any transaction) or `log_in_with_identity` (single
sign-on); the app keeps only the agent id in its session and rebuilds the `Principal` from the database on
every request, so a changed role or store applies at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.base import utcnow
from engine.db.models import Agent, Mailbox, Store
from engine.db.session import Database
from engine.errors import InputError, PermissionDenied
from engine.services import audit, sign_in
from engine.services.agents import (
    NewPassword,
    authenticated_agent,
    create_agent,
    end_sessions,
    fold_username,
    principal_for,
    stored_password_hash,
    verify_password,
)
from engine.services.sign_in import SignInLimits, SignInLocked
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
    session_generation: int = 0  # the browser session keeps it; a newer one in the database signs it out

    @classmethod
    def of(cls, agent: Agent) -> SignedIn:
        language = agent.ui_language or "en"
        return cls(
            principal_for(agent),
            agent.display_name,
            agent.username,
            language,
            bool(agent.available),
            agent.session_generation or 0,
        )


def signed_in(session: Session, agent_id: int, session_generation: int | None = None) -> SignedIn | None:
    """The signed-in agent, or None when the account was removed or deactivated since login, or its sessions
    were ended (password reset, role change, single sign-on unbind) after this one began."""
    agent = session.get(Agent, agent_id)
    if agent is None or not agent.active:
        return None
    if session_generation is not None and session_generation != (agent.session_generation or 0):
        return None
    return SignedIn.of(agent)


def log_in(
    db: Database,
    username: str,
    password: str,
    *,
    client: str = "",
    limits: SignInLimits | None = None,
    now: datetime | None = None,
) -> SignedIn:
    """Check a local password and return who signed in; raises PermissionDenied (wrong password),
    SignInThrottled (wait and retry) or SignInLocked (an admin must unlock). `client` is the browser's address,
    throttled across usernames. The hash is verified with no transaction open (argon2 is slow on purpose); an
    unknown username costs the same time, counts and locks the same way, so nothing tells it apart."""
    limits = limits or SignInLimits()
    now = now or utcnow()
    username = username.strip()[:320]
    key = fold_username(username)
    refused: PermissionDenied | None = None
    stored: str | None = None
    with db.transaction() as session:  # short: the refusal's audit event is committed
        try:
            sign_in.check_allowed(session, key, client, limits, now)
        except PermissionDenied as exc:
            refused = exc
        else:
            stored = stored_password_hash(session, username)
    if refused is not None:
        raise refused
    try:
        verify_password(stored, password)
    except PermissionDenied:
        with db.transaction() as session:
            locked = sign_in.record_failure(session, key, client, limits, now)
        if locked:
            raise SignInLocked(
                f"Wrong password {limits.max_failures} times in a row: this account is now locked. "
                "Ask an admin to unlock it (Settings > Users, or `replydesk user-unlock`)."
            ) from None
        raise
    assert stored is not None  # verify_password refuses a missing hash
    with db.transaction() as session:
        agent = authenticated_agent(session, username, stored)
        sign_in.record_success(session, agent, client)
        return SignedIn.of(agent)


@dataclass(frozen=True)
class IdentityRefused:
    """Why a verified single sign-on identity does not get in: `code` picks the interface sentence."""

    code: str  # no_email | email_unverified | no_subject | unknown_account | inactive_account
    # | ambiguous_account | identity_mismatch
    email: str
    message: str


def log_in_with_identity(
    session: Session, claims: Mapping[str, Any], *, provider: str = "default"
) -> SignedIn | IdentityRefused:
    """Map an identity verified by an OIDC provider (the id_token's claims) to an existing, active agent.

    The rule: the `email` claim, folded (`fold_username`), equals the agent's folded username, and the provider
    says the address is verified (`email_verified` present and true: a provider that does not send it, such as
    Entra by default, is refused, since anyone can put an address on an account there). The first sign-in binds
    the account to the identity's issuer and subject; afterwards only that pair gets in, so a second provider
    carrying the same e-mail does not (an admin can unbind). There is no provisioning, and role and stores come
    from the account, never from the token. Both outcomes are audited; a refusal is returned (not raised) so the
    caller's transaction keeps its audit event.
    """
    email = claims.get("email")
    email = email.strip()[:320] if isinstance(email, str) else ""
    verified = claims.get("email_verified")
    issuer, subject = claims.get("iss"), claims.get("sub")
    agent: Agent | None = None
    refusal: IdentityRefused | None
    if not email or "@" not in email:
        refusal = IdentityRefused(
            "no_email",
            email,
            "The identity provider sent no email address; ask an admin to request the email scope for ReplyDesk.",
        )
    elif verified is not True and not (isinstance(verified, str) and verified.strip().lower() == "true"):
        refusal = IdentityRefused(
            "email_unverified",
            email,
            f"The identity provider has not verified {email}; verify it there (or ask your administrator to send "
            "the email_verified claim), then sign in again.",
        )
    elif not isinstance(issuer, str) or not issuer or not isinstance(subject, str) or not subject:
        refusal = IdentityRefused(
            "no_subject", email, "The identity provider sent no issuer or subject; ask an admin to check its set-up."
        )
    else:
        matches = session.scalars(select(Agent).where(Agent.username_key == fold_username(email))).all()
        active = [candidate for candidate in matches if candidate.active]
        if len(active) == 1:
            agent = active[0]
            refusal = _bind_or_match(session, agent, email, issuer, subject, provider)
        elif len(active) > 1:
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
    if refusal is None and agent is not None:
        audit.record(
            session,
            "agent.login",
            "agent",
            agent.id,
            actor_id=agent.id,
            after={"method": "oidc", "provider": provider, "email": email},
        )
        return SignedIn.of(agent)
    assert refusal is not None
    audit.record(
        session,
        "agent.login_refused",
        "agent",
        agent.id if agent is not None else None,
        after={"method": "oidc", "provider": provider, "email": email, "reason": refusal.code},
    )
    return refusal


def _bind_or_match(
    session: Session, agent: Agent, email: str, issuer: str, subject: str, provider: str
) -> IdentityRefused | None:
    """Bind a first identity to the account (audited), or check that this is the bound one."""
    if agent.sso_issuer is None and agent.sso_subject is None:
        agent.sso_issuer, agent.sso_subject = issuer[:400], subject[:255]
        audit.record(
            session,
            "agent.sso_bound",
            "agent",
            agent.id,
            actor_id=agent.id,
            after={"provider": provider, "issuer": issuer[:400], "subject": subject[:255]},
        )
        return None
    if (agent.sso_issuer, agent.sso_subject) == (issuer[:400], subject[:255]):
        return None
    return IdentityRefused(
        "identity_mismatch",
        email,
        f"The account {email} is bound to another single sign-on identity; sign in with that one, or ask an "
        "admin to unbind it.",
    )


def unbind_identity(session: Session, principal: Principal, agent_id: int) -> None:
    """An admin lets the account bind a new single sign-on identity at its next sign-in (audited); the account
    is signed out everywhere."""
    require(principal, Action.MANAGE_USERS)
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise InputError(f"Account {agent_id} does not exist (any more); reload the page.")
    before = {"issuer": agent.sso_issuer, "subject": agent.sso_subject}
    agent.sso_issuer = agent.sso_subject = None
    end_sessions(agent)
    audit.record(session, "agent.sso_unbound", "agent", agent.id, actor_id=principal.agent_id or None, before=before)


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
    locked: bool = False  # too many wrong passwords: an admin unlocks it
    sso_bound: bool = False  # bound to a single sign-on identity: an admin can unbind it


def _summary(agent: Agent, locked: set[str] | None = None) -> AgentSummary:
    return AgentSummary(
        agent.id,
        agent.username,
        agent.display_name,
        agent.role,
        sorted(s.name for s in agent.stores),
        list(agent.languages or []),
        agent.active,
        agent.username_key in (locked or set()),
        agent.sso_subject is not None,
    )


def list_agents(session: Session, principal: Principal, *, store_id: int | None = None) -> list[AgentSummary]:
    """Everyone (admin), or the active agents of one store the principal works on (to assign to)."""
    if store_id is None:
        require(principal, Action.MANAGE_USERS)
        locked = sign_in.locked_usernames(session)
        return [_summary(a, locked) for a in session.scalars(select(Agent).order_by(Agent.username))]
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

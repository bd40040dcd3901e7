"""Single sign-on (OIDC) through Streamlit's `st.login` / `st.user` / `st.logout`, behind one small protocol.

Streamlit does the protocol work: `st.login(provider)` sends the browser to the identity provider, checks the
signed id_token it brings back and keeps its claims in a signed cookie, which a new browser session reads as
`st.user`. This module only answers three questions for the pages: which providers are configured (the `[auth]`
section of `.streamlit/secrets.toml`), who the browser is at the provider, and how to go there and back.
Which ReplyDesk agent that identity is, is decided by `engine.services.accounts.log_in_with_identity`.

Pages call `auth.single_sign_on()` (through the module, so AppTest tests can swap in `FakeSingleSignOn`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

import streamlit as st

from engine.errors import ConfigError

DEFAULT_PROVIDER = "default"  # Streamlit's name for the provider configured directly in `[auth]`
_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
# What Streamlit adds to the provider's claims in `st.user`; not part of the identity.
_STREAMLIT_USER_KEYS = frozenset({"is_logged_in", "tokens", "provider", "origin"})


@dataclass(frozen=True)
class Provider:
    name: str  # the `[auth.<name>]` section, or DEFAULT_PROVIDER
    label: str  # shown as "Sign in with <label>"


@dataclass(frozen=True)
class Identity:
    """Who the browser is at an identity provider: the verified id_token's claims (email, email_verified, ...)."""

    provider: str
    claims: Mapping[str, Any] = field(default_factory=dict)


class SingleSignOn(Protocol):
    def providers(self) -> list[Provider]:
        """The configured providers, [] without an `[auth]` section; ConfigError when it is incomplete."""
        ...

    def identity(self) -> Identity | None:
        """The identity this browser signed in with, None when it did not."""
        ...

    def log_in(self, provider: str) -> None:
        """Send the browser to the provider; it comes back as a new session with `identity()` set."""
        ...

    def log_out(self) -> None:
        """Forget the identity (Streamlit's cookie) so the next visit is signed out."""
        ...


def providers_from_secrets(auth: Mapping[str, Any]) -> list[Provider]:
    """Read the providers from an `[auth]` section the way `st.login` does: the keys right in `[auth]` are the
    default provider, each `[auth.<name>]` table with a client_id is a named one. An optional `label` key names
    the button (Authlib ignores it); otherwise the provider's name or its metadata host is shown."""
    missing = [key for key in ("redirect_uri", "cookie_secret") if not auth.get(key)]
    if missing:
        raise ConfigError(
            f"The [auth] section of .streamlit/secrets.toml lacks {' and '.join(missing)}; add them (redirect_uri "
            "is the app's address plus /oauth2callback) or remove [auth] to sign in with local accounts only."
        )
    found: list[Provider] = []
    if auth.get("client_id"):
        found.append(_provider(DEFAULT_PROVIDER, auth))
    for name, section in auth.items():
        if isinstance(section, Mapping) and "client_id" in section:
            if "_" in name:
                raise ConfigError(f"[auth.{name}]: Streamlit does not allow '_' in provider names; rename it.")
            found.append(_provider(name, section))
    if not found:
        raise ConfigError(
            "The [auth] section of .streamlit/secrets.toml names no provider; add client_id, client_secret and "
            "server_metadata_url to [auth] or to an [auth.<name>] table."
        )
    return found


def _provider(name: str, section: Mapping[str, Any]) -> Provider:
    where = "[auth]" if name == DEFAULT_PROVIDER else f"[auth.{name}]"
    missing = [key for key in _PROVIDER_KEYS if not section.get(key)]
    if missing:
        raise ConfigError(f"{where} in .streamlit/secrets.toml lacks {', '.join(missing)}; add them.")
    label = section.get("label")
    if not isinstance(label, str) or not label.strip():
        host = urlparse(str(section["server_metadata_url"])).hostname or name
        label = host if name == DEFAULT_PROVIDER else name.capitalize()
    return Provider(name, label.strip())


class StreamlitSingleSignOn:
    """The real thing. Stateless: every call reads the current browser session through Streamlit."""

    def providers(self) -> list[Provider]:
        if not st.secrets.load_if_toml_exists() or "auth" not in st.secrets:
            return []
        auth = st.secrets["auth"]
        return providers_from_secrets(auth) if isinstance(auth, Mapping) else []

    def identity(self) -> Identity | None:
        user = st.user.to_dict()
        if user.get("is_logged_in") is not True:
            return None
        claims = {key: value for key, value in user.items() if key not in _STREAMLIT_USER_KEYS}
        return Identity(str(user.get("provider") or DEFAULT_PROVIDER), claims)

    def log_in(self, provider: str) -> None:
        st.login(provider)

    def log_out(self) -> None:
        st.logout()


class FakeSingleSignOn:
    """For page tests: `log_in` stands in for the round trip to the provider and back, after which the browser
    is `claims_on_login`. `calls` records what the page asked for."""

    def __init__(self, providers: Sequence[Provider] = (), *, claims_on_login: Mapping[str, Any] | None = None):
        self._providers = list(providers)
        self.claims_on_login = dict(claims_on_login or {})
        self.current: Identity | None = None
        self.calls: list[str] = []

    def providers(self) -> list[Provider]:
        return list(self._providers)

    def identity(self) -> Identity | None:
        return self.current

    def log_in(self, provider: str) -> None:
        self.calls.append(f"log_in:{provider}")
        self.current = Identity(provider, dict(self.claims_on_login))

    def log_out(self) -> None:
        self.calls.append("log_out")
        self.current = None


_STREAMLIT = StreamlitSingleSignOn()


def single_sign_on() -> SingleSignOn:
    return _STREAMLIT

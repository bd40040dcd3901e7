"""A loopback OpenID Connect provider for the single sign-on test: discovery document, an authorize endpoint
that skips the login screen (it answers at once as `user`, whoever the test says is signed in there), a token
endpoint that hands out an RS256-signed id_token, and the JWKS to check it with.

It checks what a real provider checks (client id and secret, redirect URI, single-use codes, PKCE), so a
client mistake fails here as it would in production. `log` records every request path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "replydesk-test"
CLIENT_SECRET = "loopback-client-secret"
KEY_ID = "loopback-key-1"


@dataclass
class _Grant:
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    claims: dict[str, Any]


@dataclass
class FakeOidcProvider:
    redirect_uri: str | None = None  # the one registered redirect URI; None accepts any loopback one
    user: dict[str, Any] = field(default_factory=dict)  # the claims of whoever is signed in at the provider
    log: list[str] = field(default_factory=list)
    issued: list[dict[str, Any]] = field(default_factory=list)  # the id_token claims handed out

    def __post_init__(self) -> None:
        self._key = RSAKey.generate_key(2048, parameters={"kid": KEY_ID, "use": "sig", "alg": "RS256"})
        self._grants: dict[str, _Grant] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> FakeOidcProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- endpoints -----------------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """Returns status, headers, body: a redirect back to the client with a code, or a 400 naming the fault."""
        redirect_uri = query.get("redirect_uri", "")
        fault = None
        if query.get("client_id") != CLIENT_ID:
            fault = "unknown client_id"
        elif not self._redirect_allowed(redirect_uri):
            fault = f"redirect_uri {redirect_uri!r} is not registered"
        elif query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
            fault = "only the authorization code flow with scope openid is supported"
        elif query.get("code_challenge") and query.get("code_challenge_method") != "S256":
            fault = "PKCE needs S256"
        if fault:
            return 400, {"Content-Type": "text/plain"}, fault
        code = secrets.token_urlsafe(16)
        self._grants[code] = _Grant(redirect_uri, query.get("nonce"), query.get("code_challenge"), dict(self.user))
        back = {"code": code, "state": query.get("state", "")}
        return 302, {"Location": f"{redirect_uri}?{urlencode(back)}"}, ""

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            client_id, client_secret = unquote(user), unquote(password)
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        grant = self._grants.pop(form.get("code", ""), None)  # single use
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs from the authorize one"}
        if grant.code_challenge is not None:
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.code_challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE code_verifier does not match"}
        now = int(time.time())
        claims = {
            "sub": "loopback-user",
            **grant.claims,
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        self.issued.append(claims)
        id_token = jwt.encode({"alg": "RS256", "kid": KEY_ID}, claims, self._key)
        return 200, {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "openid email profile",
            "id_token": id_token,
        }

    def _redirect_allowed(self, redirect_uri: str) -> bool:
        if self.redirect_uri is not None:
            return redirect_uri == self.redirect_uri
        return urlsplit(redirect_uri).hostname in ("127.0.0.1", "localhost")


def _handler_for(provider: FakeOidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            provider.log.append(f"GET {url.path}")
            if url.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif url.path == "/jwks":
                self._json(200, provider.jwks())
            elif url.path == "/authorize":
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                status, headers, body = provider.authorize(query)
                self._send(status, headers, body.encode())
            else:
                self._send(404, {"Content-Type": "text/plain"}, b"not found")

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            provider.log.append(f"POST {url.path}")
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if url.path == "/token":
                self._json(*provider.token(form, self.headers.get("Authorization")))
            else:
                self._send(404, {"Content-Type": "text/plain"}, b"not found")

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            self._send(
                status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, json.dumps(payload).encode()
            )

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: `provider.log` keeps what matters
            pass

    return Handler

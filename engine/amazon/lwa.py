"""Login with Amazon: trade the seller's refresh token for an SP-API access token, and cache it.

The token lives one hour; it is reused until shortly before it expires. The client secret and the
refresh token never appear in a log line or an error message.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from engine.amazon.ratelimit import Clock
from engine.errors import AmazonApiError

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
REFRESH_MARGIN_SECONDS = 60.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LwaCredentials:
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)


class AccessTokenSource(Protocol):
    """Where the SP-API client gets its `x-amz-access-token` from."""

    def access_token(self) -> str: ...

    def invalidate(self) -> None:
        """Forget the cached token (Amazon rejected it); the next call fetches a fresh one."""
        ...


class LwaTokenProvider:
    """Thread-safe LWA refresh-token grant with an in-memory cache."""

    def __init__(
        self,
        credentials: LwaCredentials,
        http_client: httpx.Client,
        *,
        token_url: str = LWA_TOKEN_URL,
        clock: Clock = time.monotonic,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
    ) -> None:
        self._credentials = credentials
        self._http = http_client
        self._token_url = token_url
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()  # one refresh at a time; waiters reuse its result

    def access_token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token, self._renew_at = self._fetch()
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> tuple[str, float]:
        creds = self._credentials
        started = self._clock()
        try:
            response = self._http.post(
                self._token_url,
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": creds.refresh_token,
                    "client_id": creds.client_id,
                    "client_secret": creds.client_secret,
                },
                headers={"accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise AmazonApiError(
                f"Could not reach Login with Amazon ({type(exc).__name__}); check the network and try again.",
                code="lwa_unreachable",
            ) from exc
        if response.status_code in (400, 401):
            raise AmazonApiError(self._rejection_message(response), status=response.status_code, code="lwa_auth")
        if response.status_code != 200:
            raise AmazonApiError(
                f"Login with Amazon answered HTTP {response.status_code}; try again in a few minutes.",
                status=response.status_code,
                code="lwa_unavailable",
            )
        try:
            body = response.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise AmazonApiError(
                "Login with Amazon sent a token response without an access token; try again later.",
                code="lwa_bad_response",
            ) from exc
        # Short-lived tokens (tests, odd configs) must not be considered stale the moment they arrive.
        margin = min(self._refresh_margin, expires_in / 2)
        log.info("LWA access token refreshed for client %s (valid %.0f s)", creds.client_id, expires_in)
        return token, started + expires_in - margin

    def _rejection_message(self, response: httpx.Response) -> str:
        try:
            error = str(response.json().get("error", ""))
        except ValueError:
            error = ""
        status = response.status_code
        if error == "invalid_grant":
            what = (
                "the refresh token was rejected (invalid_grant): check the SP-API refresh token, or "
                "re-authorise the app in Seller Central to get a new one"
            )
        elif error in ("invalid_client", "unauthorized_client"):
            what = f"the app credentials were rejected ({error}): check the LWA client id and client secret"
        else:
            what = (
                f"the token request was refused ({error or 'no error code'}): check the LWA client id, "
                "client secret and refresh token"
            )
        return f"Login with Amazon answered HTTP {status}: {what}."

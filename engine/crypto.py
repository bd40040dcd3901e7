"""Mailbox credentials at rest: Fernet (AES-128-CBC + HMAC) with one key per installation.

The key comes from `Settings.secret_key` (env `REPLYDESK_SECRET_KEY`) or, when that is unset, from
`<data_dir>/secret.key`, created with 0600 permissions on first use. Losing or changing the key makes
stored passwords unreadable: the user re-enters them. Secrets are never logged.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from engine.errors import ConfigError
from engine.settings import Settings

__all__ = ["decrypt", "encrypt", "key_file", "mask_secret"]

_MASK = "••••"


def key_file(settings: Settings) -> Path:
    return settings.data_dir / "secret.key"


def _read_or_create_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        # O_EXCL: when two processes start at once, exactly one writes the key and the other reads it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def _fernet(settings: Settings) -> Fernet:
    if settings.secret_key:
        key, origin = settings.secret_key.strip().encode(), "REPLYDESK_SECRET_KEY"
    else:
        path = key_file(settings)
        key, origin = _read_or_create_key_file(path), str(path)
    try:
        return Fernet(key)
    except ValueError:
        raise ConfigError(
            f"The secret key in {origin} is not a valid Fernet key (32 url-safe base64 bytes). Generate one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
        ) from None


def encrypt(settings: Settings, plain: str) -> str:
    """An opaque, url-safe token for `plain` (empty stays empty: no password set)."""
    if plain == "":
        return ""
    return _fernet(settings).encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt(settings: Settings, token: str) -> str:
    if token == "":
        return ""
    try:
        return _fernet(settings).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise ConfigError(
            "A stored mailbox password cannot be decrypted: the secret key changed since it was saved "
            "(REPLYDESK_SECRET_KEY or data/secret.key). Re-enter the mailbox password under Settings → Mailboxes."
        ) from None


def mask_secret(secret: str) -> str:
    """`"set, ends …yz"`: whether a secret is set and its last 2 characters, never more; a short secret shows
    only that it is set, so the hint never reveals a real share of it. "" when none is set."""
    if not secret:
        return ""
    if len(secret) < 8:
        return "set"
    return f"set, ends {_MASK}{secret[-2:]}"

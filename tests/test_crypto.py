"""Credential encryption at rest: round trip, key file, key from settings, changed key, masking."""

from __future__ import annotations

import stat

import pytest
from cryptography.fernet import Fernet

from engine import crypto
from engine.errors import ConfigError
from engine.settings import Settings


@pytest.mark.parametrize("plain", ["hunter2", "äpp-pässwörd 🔑", "x" * 300, ""])
def test_round_trip_with_key_file(settings: Settings, plain: str) -> None:
    token = crypto.encrypt(settings, plain)
    assert crypto.decrypt(settings, token) == plain
    if plain:
        assert plain not in token


def test_key_file_is_created_private_and_reused(settings: Settings) -> None:
    path = crypto.key_file(settings)
    assert not path.exists()
    token = crypto.encrypt(settings, "secret")
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600
    key = path.read_bytes()
    assert crypto.decrypt(settings, token) == "secret"
    assert path.read_bytes() == key  # not regenerated


def test_key_from_settings_wins_over_key_file(settings: Settings) -> None:
    key = Fernet.generate_key().decode()
    with_key = settings.with_overrides(secret_key=key)
    token = crypto.encrypt(with_key, "secret")
    assert not crypto.key_file(settings).exists()
    assert Fernet(key.encode()).decrypt(token.encode()) == b"secret"


def test_changed_key_asks_to_reenter_the_password(settings: Settings) -> None:
    token = crypto.encrypt(settings.with_overrides(secret_key=Fernet.generate_key().decode()), "secret")
    other = settings.with_overrides(secret_key=Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match=r"key changed.*Re-enter"):
        crypto.decrypt(other, token)


def test_malformed_key_is_a_config_error(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="not a valid Fernet key"):
        crypto.encrypt(settings.with_overrides(secret_key="too-short"), "secret")


@pytest.mark.parametrize(
    ("secret", "masked"),
    [("abcdefyz", "set, ends ••••yz"), ("app-password-1234", "set, ends ••••34"), ("short", "set"), ("", "")],
)
def test_mask_secret(secret: str, masked: str) -> None:
    assert crypto.mask_secret(secret) == masked

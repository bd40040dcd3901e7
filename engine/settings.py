"""One settings object, read once from the environment (and an optional `.env` file), then passed down.

Every setting has an embedded default so `make run` works on a fresh machine: SQLite under `data/`,
the demo inbox, the offline models, no LLM.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

NLP_BACKENDS = ("real", "fake")


def _read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; `#` comments; optional quotes. No interpolation, on purpose."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, found {line[:40]!r}. Fix or remove that line.")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values


def _int(env: Mapping[str, str], key: str, default: int, minimum: int = 0) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, got {value}.")
    return value


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}.")


def _ca_file(env: Mapping[str, str]) -> Path | None:
    raw = env.get("REPLYDESK_CA_FILE", "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"REPLYDESK_CA_FILE points at {raw!r}, which is not a file. Give the path of a PEM file.")
    return path


@dataclass(frozen=True)
class Settings:
    data_dir: Path = PROJECT_ROOT / "data"
    knowledge_dir: Path = PROJECT_ROOT / "knowledge"
    database_url: str = ""  # empty: SQLite file under data_dir
    nlp_backend: str = "real"  # "fake": deterministic stand-ins, no model loading (tests, tiny machines)
    embedding_model: str | None = None  # a sentence-transformers model path; None: the packaged MiniLM
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: int = 30
    secret_key: str | None = field(default=None, repr=False)  # Fernet key for mailbox credentials
    sync_interval_seconds: int = 60
    backfill_days: int = 90
    sync_batch_size: int = 200
    max_mail_mb: int = 25  # a larger mail keeps its headers and the beginning of its text, with the reason
    mail_max_depth: int = 30  # MIME nesting levels the parser reads; deeper parts stay in the raw mail
    mail_max_parts: int = 200  # MIME parts the parser reads in one mail
    spapi_client_id: str | None = None
    spapi_client_secret: str | None = field(default=None, repr=False)
    spapi_refresh_token: str | None = field(default=None, repr=False)
    spapi_region: str = "eu"
    spapi_sandbox: bool = False
    local_login: bool = True  # false: single sign-on only (OIDC, `[auth]` in .streamlit/secrets.toml)
    login_max_failures: int = 10  # wrong local passwords in a row before the account locks (an admin unlocks)
    login_backoff_after: int = 3  # wrong passwords before each further attempt waits (doubling each time)
    login_backoff_seconds: float = 1.0  # the first wait; 0 turns the back-off off
    client_backoff_after: int = 20  # failures from one client address, over all usernames, before it waits
    session_idle_hours: float = 8.0  # a browser session with no user action this long signs out
    # Extra CA certificates (PEM) trusted for IMAP and SMTP TLS, beside the system's: a private mail server.
    ca_file: Path | None = None
    send_max_attempts: int = 8  # a reply that keeps failing ends `failed` for a human after this many tries
    sla_at_risk_minutes: int = 120  # `sla.at_risk` webhook events fire this long before Amazon's deadline

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'replydesk.db'}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def llm_configured(self) -> bool:
        return bool(self.openai_api_key)

    @property
    def spapi_configured(self) -> bool:
        return bool(self.spapi_client_id and self.spapi_client_secret and self.spapi_refresh_token)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, env_file: Path | None = None) -> Settings:
        """Environment variables win over `.env` (default: `.env` in the working directory)."""
        env: dict[str, str] = {}
        env_file = env_file if env_file is not None else Path(".env")
        if env_file.is_file():
            env.update(_read_env_file(env_file))
        env.update(os.environ if environ is None else environ)

        backend = env.get("REPLYDESK_NLP", "real").strip().lower() or "real"
        if backend not in NLP_BACKENDS:
            raise ConfigError(f"REPLYDESK_NLP must be one of {', '.join(NLP_BACKENDS)}, got {backend!r}.")
        region = env.get("REPLYDESK_SPAPI_REGION", "eu").strip().lower() or "eu"
        if region not in {"na", "eu", "fe"}:
            raise ConfigError(f"REPLYDESK_SPAPI_REGION must be na, eu or fe, got {region!r}.")
        data_dir = Path(env.get("REPLYDESK_DATA_DIR") or PROJECT_ROOT / "data")
        return cls(
            data_dir=data_dir,
            knowledge_dir=Path(env.get("REPLYDESK_KNOWLEDGE_DIR") or PROJECT_ROOT / "knowledge"),
            database_url=env.get("REPLYDESK_DATABASE_URL", "").strip(),
            nlp_backend=backend,
            embedding_model=env.get("REPLYDESK_EMBEDDING_MODEL") or None,
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            llm_model=env.get("REPLYDESK_LLM_MODEL") or "gpt-4o-mini",
            llm_timeout_seconds=_int(env, "REPLYDESK_LLM_TIMEOUT", 30, minimum=1),
            secret_key=env.get("REPLYDESK_SECRET_KEY") or None,
            sync_interval_seconds=_int(env, "REPLYDESK_SYNC_INTERVAL", 60, minimum=1),
            backfill_days=_int(env, "REPLYDESK_BACKFILL_DAYS", 90, minimum=0),
            sync_batch_size=_int(env, "REPLYDESK_SYNC_BATCH", 200, minimum=1),
            max_mail_mb=_int(env, "REPLYDESK_MAX_MAIL_MB", 25, minimum=1),
            mail_max_depth=_int(env, "REPLYDESK_MAIL_MAX_DEPTH", 30, minimum=1),
            mail_max_parts=_int(env, "REPLYDESK_MAIL_MAX_PARTS", 200, minimum=1),
            spapi_client_id=env.get("REPLYDESK_SPAPI_CLIENT_ID") or None,
            spapi_client_secret=env.get("REPLYDESK_SPAPI_CLIENT_SECRET") or None,
            spapi_refresh_token=env.get("REPLYDESK_SPAPI_REFRESH_TOKEN") or None,
            spapi_region=region,
            spapi_sandbox=_bool(env, "REPLYDESK_SPAPI_SANDBOX", False),
            local_login=_bool(env, "REPLYDESK_LOCAL_LOGIN", True),
            login_max_failures=_int(env, "REPLYDESK_LOGIN_MAX_FAILURES", 10, minimum=1),
            login_backoff_after=_int(env, "REPLYDESK_LOGIN_BACKOFF_AFTER", 3, minimum=1),
            login_backoff_seconds=_int(env, "REPLYDESK_LOGIN_BACKOFF_SECONDS", 1, minimum=0),
            client_backoff_after=_int(env, "REPLYDESK_CLIENT_BACKOFF_AFTER", 20, minimum=1),
            session_idle_hours=_int(env, "REPLYDESK_SESSION_IDLE_HOURS", 8, minimum=1),
            ca_file=_ca_file(env),
            send_max_attempts=_int(env, "REPLYDESK_SEND_MAX_ATTEMPTS", 8, minimum=1),
            sla_at_risk_minutes=_int(env, "REPLYDESK_SLA_AT_RISK_MINUTES", 120, minimum=1),
        )

"""Service settings, read from the environment (prefix ``KIZUNA_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/kizuna.db"


def normalise_database_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``, ``sqlite:///``)
    and pick the async drivers the service uses (psycopg 3, aiosqlite)."""
    for prefix in ("postgres://", "postgresql://", "postgresql+asyncpg://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KIZUNA_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL; a SQLite file by default, PostgreSQL (psycopg) in production.",
    )
    bootstrap_admin_key: str | None = Field(
        default=None,
        description="Installed as the first admin key at start-up when no active admin key exists.",
    )
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    db_pool_size: int = Field(default=10, ge=1)
    db_echo: bool = False
    log_level: str = "INFO"
    # Operations (issue 5): logs, metrics, webhooks.
    log_format: Literal["json", "text"] = Field(
        default="json", description="`json`: one JSON object per line (production); `text`: for a terminal."
    )
    metrics_token: str | None = Field(
        default=None,
        description="When set, GET /metrics needs `Authorization: Bearer <token>`; open otherwise.",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs resolving to private, loopback or link-local addresses (SSRF guard off).",
    )
    webhook_max_attempts: int = Field(default=8, ge=1, le=50, description="Delivery attempts before giving up.")
    webhook_retry_base_seconds: float = Field(
        default=5.0, gt=0, description="Wait before the 2nd attempt; each later wait is 3x longer (capped at 1 h)."
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60, description="Per-attempt HTTP timeout.")
    # Matching rounds (issue 4): the round runner and participant tokens.
    runner: Literal["inprocess", "off"] = Field(
        default="inprocess",
        description="`inprocess`: the API process also runs queued rounds; `off`: only `kizuna worker` processes do.",
    )
    runner_executor: Literal["process", "thread"] = Field(
        default="process",
        description="Where the solver runs: a spawned process (keeps the API responsive) or a thread (tests).",
    )
    runner_lease_seconds: float = Field(
        default=60.0, ge=1, description="A claimed round is re-claimable by another runner after this long without renewal."
    )
    runner_poll_seconds: float = Field(default=1.0, gt=0, description="How often an idle runner looks for queued rounds.")
    runner_max_attempts: int = Field(default=3, ge=1, le=20, description="Claims of one round before it is failed.")
    round_time_limit_seconds: float = Field(default=60.0, gt=0, description="Solver time limit per round.")
    participant_token_ttl_seconds: int = Field(
        default=3600, ge=60, le=30 * 86400, description="Lifetime of a participant token."
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description=(
            "How long a process remembers a key that authenticated, to spare a lookup per request. "
            "Revocations by this process take effect at once; by another process (worker, replica, "
            "`kizuna keys revoke`) after at most this long. 0 turns the cache off."
        ),
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()

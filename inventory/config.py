"""Settings read from the environment (prefix ``INVENTORY_``) or a ``.env`` file."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Annotated

from limits import parse
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 32


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    """Every knob of the service; the first block is the documented contract."""

    model_config = SettingsConfigDict(
        env_prefix="INVENTORY_", env_file=".env", extra="ignore", frozen=True
    )

    env: Environment = Environment.development
    database_url: str = "sqlite+aiosqlite:///./inventory.db"
    redis_url: str | None = None
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    access_token_minutes: int = Field(default=30, ge=1, le=24 * 60)
    admin_email: str | None = None
    admin_password: SecretStr | None = None
    broker_url: str | None = None
    cors_origins: Annotated[list[str], NoDecode] = []
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    allowed_hosts: Annotated[list[str], NoDecode] = ["*"]
    refresh_token_days: int = Field(default=14, ge=1, le=365)
    """Lifetime of a refresh token (each one works once; refreshing gives a new pair)."""
    max_concurrent_hashes: int = Field(default=4, ge=1)
    """Password hashes (argon2, 64 MiB each) run at once per process; others wait, then 503."""
    graphql_max_cost: int = Field(default=25_000, ge=1)
    """A GraphQL operation whose estimated cost is above this is refused before it runs."""
    stream_idle_seconds: float = Field(default=30.0, gt=0)
    """A CSV download or event stream whose client reads nothing this long is aborted."""
    max_exports_per_user: int = Field(default=2, ge=1)
    """CSV downloads one user may hold open at once, across every worker."""
    max_streams_per_user: int = Field(default=10, ge=1)
    """Live streams (WebSocket, SSE, subscriptions) one user may hold open at once."""

    # Beyond the documented contract: database tuning and start-up behaviour.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    """Connections beyond the pool are closed as soon as they are handed back, so under
    load above the pool size each request would open one: off unless asked for."""
    db_wait_seconds: float = Field(default=30.0, ge=0)
    """How long `inventory serve`/`migrate` wait for an unreachable database before giving up."""
    sqlite_busy_timeout_ms: int = Field(default=15_000, ge=0)
    graphql_introspection: bool | None = None
    """GraphQL introspection; unset means on, except in production."""
    redis_key_prefix: str = Field(default="inventory", min_length=1)
    """Every Redis key this service writes starts with it, so deployments can share a Redis."""
    cache_enabled: bool = True
    """Serve hot reads from the cache. Several processes without Redis must turn it off."""
    cache_ttl_seconds: int = Field(default=300, ge=1)
    """How long an answer stays in Redis (invalidation usually ends it sooner)."""
    cache_local_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    """The size of each process's own tier."""
    job_time_limit_seconds: int = Field(default=20 * 60, ge=10)
    """A job still running after this long is stopped and failed (the hard limit is a minute on).

    Keep the hard limit below RabbitMQ's consumer_timeout (30 minutes by default)."""
    maintenance_in_process: bool = True
    """Without a broker, each API process runs the periodic maintenance itself."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Request bodies other than uploads larger than this get 413."""
    write_rate_limit: str = "6000/minute"
    """Writes per user (REST and GraphQL mutations), counted in Redis when configured."""
    docs_enabled: bool = True
    """Serve /docs, /redoc, /openapi.json and GraphiQL."""
    upload_retention_hours: int = Field(default=24, ge=1)
    """An uploaded file no worker has taken within this long is dropped and its job failed."""
    broker_visibility_timeout_seconds: int = Field(default=60 * 60, ge=5)
    """Redis broker only: how long a job taken by a worker that died waits to be delivered again."""

    @field_validator("cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("write_rate_limit")
    @classmethod
    def _parse_rate(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError(f"not a rate limit such as 1200/minute: {value!r}") from None
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> Settings:
        key = self.secret_key.get_secret_value()
        if len(key.encode()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"INVENTORY_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} bytes (HS256)"
            )
        if self.env is Environment.production and key == DEV_SECRET_KEY:
            raise ValueError(
                "INVENTORY_SECRET_KEY must be set to a random value in production, "
                "not the development default"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def load_settings() -> Settings:
    """Settings from the process environment, read once."""
    return Settings()

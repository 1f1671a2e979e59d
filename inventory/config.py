"""Settings read from the environment (prefix ``INVENTORY_``) or a ``.env`` file."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from typing import Annotated

from limits import parse
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from inventory import secret_key as key_file

# Keys once published in this repository as defaults: anyone can sign tokens with them,
# so no environment accepts one, and no running service signs with one.
PUBLISHED_SECRET_KEYS = frozenset({"dev-only-insecure-secret-key-change-me-0123456789"})
MIN_SECRET_KEY_LENGTH = key_file.MIN_LENGTH


def _random_key() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(48))


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
    secret_key: SecretStr = Field(default_factory=_random_key)
    """JWT signing key. Left unset: production refuses to start; elsewhere ``load_settings``
    uses the install's generated key, and Settings built in code get a random one of their own."""
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
    reservation_ttl_seconds: int = Field(default=900, ge=1)
    """How long a reservation holds stock when the request names no ``ttl_seconds``."""
    reservation_max_ttl_seconds: int = Field(default=86_400, ge=1)
    """The longest hold a reservation may ask for."""

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
    """Serve hot reads from the cache; without Redis, also remember signed-in users.

    Off, no process keeps cached answers, and without Redis none remembers users (with
    Redis they follow its invalidations). Several processes without Redis must turn it
    off (``inventory serve --workers N`` and gunicorn do; see ``inventory.worker_count``)."""
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
    max_in_flight: int = Field(default=100, ge=1)
    """HTTP requests each process works on at once (until their answer starts); see scaling.md."""
    max_queued: int = Field(default=400, ge=0)
    """Requests past max_in_flight that wait for a slot; past that, 503 with Retry-After at once."""
    queue_wait_seconds: float = Field(default=10.0, ge=0)
    """How long a queued request waits for a slot before it is answered 503 (as long as a
    request may wait for a pooled database connection)."""

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
    def _default_hold_within_the_longest(self) -> Settings:
        if self.reservation_ttl_seconds > self.reservation_max_ttl_seconds:
            raise ValueError(
                "INVENTORY_RESERVATION_TTL_SECONDS must not exceed "
                "INVENTORY_RESERVATION_MAX_TTL_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> Settings:
        key = self.secret_key.get_secret_value()
        if key in PUBLISHED_SECRET_KEYS:
            raise ValueError(
                "INVENTORY_SECRET_KEY is a key published in the repository, which anyone "
                "can sign tokens with: set a random one (or leave it unset outside production)"
            )
        if len(key.encode()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"INVENTORY_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} bytes (HS256)"
            )
        if self.env is Environment.production and not self.secret_key_given:
            raise ValueError(
                "INVENTORY_SECRET_KEY must be set to a random value in production "
                "(e.g. `openssl rand -hex 32`)"
            )
        return self

    @property
    def secret_key_given(self) -> bool:
        """The key came from the environment, ``.env`` or the caller, not the random default."""
        return "secret_key" in self.model_fields_set

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def load_settings() -> Settings:
    """Settings from the process environment, read once.

    Without ``INVENTORY_SECRET_KEY`` (never in production), the key is the install's
    own, generated on first start and kept in a file (``inventory.secret_key``): done
    here, once per process, rather than in validation, so constructing ``Settings`` in
    code or tests never touches the file system.
    """
    settings = Settings()
    if settings.secret_key_given:
        return settings
    key = key_file.install_key(settings.database_url)
    if key in PUBLISHED_SECRET_KEYS:
        raise ValueError(f"{key_file.key_file_for(settings.database_url)}: a published key")
    return settings.model_copy(update={"secret_key": SecretStr(key)})


def describe_invalid(exc: ValueError) -> str:
    """What is wrong with the settings, without the values given: pydantic's own message
    repeats the input, which holds the key, passwords and database credentials."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        name = f"INVENTORY_{where.upper()}: " if where else ""
        problems.append(name + error["msg"].removeprefix("Value error, "))
    return "; ".join(problems)

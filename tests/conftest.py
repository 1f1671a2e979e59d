"""Fixtures: every API test runs twice, on the two ways the service is deployed.

- ``sqlite``: the embedded default, SQLite and no Redis.
- ``postgresql``: PostgreSQL and Redis, when both are reachable.

Each run creates its own PostgreSQL database and Redis key prefix (fresh names)
and removes them at the end. With ``CI=true`` an unreachable server fails the
run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import asyncpg
import httpx
import pytest
import redis
import redis.asyncio
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory import migrations, security
from inventory.auth.throttle import LoginThrottle, WriteThrottle
from inventory.config import Settings
from inventory.db import create_engine
from inventory.main import create_app
from inventory.models import Role
from inventory.models.base import Base
from inventory.streams.slots import StreamSlots
from inventory.users import service as users
from inventory.users.schemas import UserCreate

POSTGRES_ADMIN_URL = os.environ.get(
    "INVENTORY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
# Fixtures of the live-update tests; a module's own fixture of the same name wins.
pytest_plugins = ("tests.live",)

REDIS_URL = os.environ.get("INVENTORY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the runs of ``@pytest.mark.backend(...)`` tests on the other deployment."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("backend")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("databases") if callspec else None
        (drop if marker and backend not in marker.args else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _unreachable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{reason}; CI requires it", pytrace=False)
    pytest.skip(reason)


async def _postgres_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        _unreachable(
            f"PostgreSQL at {POSTGRES_ADMIN_URL} unreachable ({type(exc).__name__}: {exc})"
        )


@pytest.fixture(scope="session")
async def redis_url(databases: DatabaseFactory) -> AsyncIterator[str | None]:
    """Redis for the ``postgresql`` deployment, under a key prefix of this run's own."""
    if databases.backend == "sqlite":
        yield None
        return
    client = redis.asyncio.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as exc:
        await client.aclose()
        _unreachable(f"Redis at {REDIS_URL} unreachable ({type(exc).__name__}: {exc})")
    yield REDIS_URL
    async for key in client.scan_iter(match=f"{REDIS_PREFIX}:*"):
        await client.delete(key)
    await client.aclose()


class DatabaseFactory:
    """Creates throw-away databases of one backend and removes them afterwards."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.created: list[str] = []

    async def create(self) -> str:
        name = f"inventory_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.tmp_path / name}.db"
        admin = await _postgres_admin()
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        self.created.append(name)
        return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False)

    async def drop_all(self) -> None:
        if not self.created:
            return
        admin = await _postgres_admin()
        try:
            for name in self.created:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(request.param, tmp_path_factory.mktemp(request.param))
    if request.param == "postgresql":
        (await _postgres_admin()).terminate()
    yield factory
    await factory.drop_all()


@pytest.fixture(scope="session")
async def database_url(databases: DatabaseFactory) -> str:
    """One migrated database per backend, shared by the API tests (emptied between tests)."""
    url = await databases.create()
    engine = create_engine(Settings(database_url=url))
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()
    return url


REDIS_PREFIX = f"inventory-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str | None) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=REDIS_PREFIX,
        # Tests run the sweep and the purge themselves, when they mean to.
        maintenance_in_process=False,
    )


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """argon2 at minimum cost: the suite creates users for every test."""
    original = security.password_hasher
    security.password_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    security.password_hasher = original


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def engine(app: FastAPI) -> AsyncEngine:
    engine: AsyncEngine = app.state.db.engine
    return engine


async def empty_tables(engine: AsyncEngine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    password: str
    role: Role
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def accounts(app: FastAPI, engine: AsyncEngine, settings: Settings) -> dict[Role, Account]:
    """An empty database holding one active user per role, made through the service layer.

    Sign-in and write throttling and the stream slots start afresh too, so no test
    inherits another's counts (user ids repeat from test to test).
    """
    await empty_tables(engine)
    await app.state.cache.forget_everything()
    counts_prefix = f"{REDIS_PREFIX}:{uuid.uuid4().hex[:8]}"
    await app.state.login_throttle.close()
    app.state.login_throttle = LoginThrottle(settings.redis_url, counts_prefix)
    await app.state.write_throttle.close()
    app.state.write_throttle = WriteThrottle(
        settings.redis_url, counts_prefix, settings.write_rate_limit
    )
    slots: StreamSlots = app.state.stream_slots
    await slots.close()
    app.state.stream_slots = StreamSlots(
        slots.limits,
        lease_seconds=slots.lease_seconds,
        redis_url=settings.redis_url,
        key_prefix=counts_prefix,
    )
    made = {}
    async with app.state.db.unit_of_work(write=True) as uow:
        for role in Role:
            email, password = f"{role.value}@example.com", f"{role.value}-password"
            data = UserCreate.model_validate({"email": email, "password": password, "role": role})
            user = await users.create_user(uow.session, data)
            token = security.create_access_token(user.id, role, settings).token
            made[role] = Account(user.id, email, password, role, token)
    return made


@pytest.fixture
async def anonymous(
    app: FastAPI, accounts: dict[Role, Account]
) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no token, on the freshly emptied database."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def viewer(app: FastAPI, accounts: dict[Role, Account]) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as a viewer, the least a reader needs."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=accounts[Role.viewer].headers
    ) as http:
        yield http


@pytest.fixture
async def client(app: FastAPI, accounts: dict[Role, Account]) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as an admin, who may do everything."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=accounts[Role.admin].headers
    ) as http:
        yield http


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers, like a hung server."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()

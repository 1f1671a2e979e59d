"""Fixtures: every API test runs on SQLite and again on PostgreSQL when it is reachable.

Each run creates its own PostgreSQL database (a fresh name) and drops it at the
end. With ``CI=true`` an unreachable PostgreSQL fails the run instead of
skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory import migrations
from inventory.config import Settings
from inventory.db import Base, create_engine
from inventory.main import create_app

POSTGRES_ADMIN_URL = os.environ.get(
    "INVENTORY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _postgres_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = f"PostgreSQL at {POSTGRES_ADMIN_URL} unreachable ({type(exc).__name__}: {exc})"
        if IN_CI:
            pytest.fail(f"{reason}; CI requires it", pytrace=False)
        pytest.skip(reason)


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


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(env="test", database_url=database_url)


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


@pytest.fixture
async def client(app: FastAPI, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    await empty_tables(engine)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http

"""Engines and sessions: one engine per database URL, and the sessions a unit of work opens."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from inventory.config import Settings
from inventory.unit_of_work import AfterCommit, UnitOfWork, unit_of_work


def create_engine(settings: Settings) -> AsyncEngine:
    """One engine per process, chosen by the URL alone.

    On PostgreSQL its pooled connections rest in autocommit: the checkout ping
    is then one round trip (asyncpg's adapter wraps it in BEGIN/ROLLBACK
    otherwise) and a read needs no BEGIN or COMMIT. Anything that must be
    atomic goes through ``transactional(engine)``, as writing units of work do.
    """
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url)
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    connect_args: dict[str, Any] = {}
    if url.get_driver_name() == "asyncpg":
        connect_args = {"timeout": 5, "server_settings": {"application_name": "inventory"}}
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=10,
        connect_args=connect_args,
        isolation_level="AUTOCOMMIT",
    )


def transactional(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` with BEGIN/COMMIT around what runs through it (see create_engine)."""
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="READ COMMITTED")


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """WAL, foreign keys, a busy timeout, and transactions SQLAlchemy controls.

    pysqlite opens transactions on its own and breaks SAVEPOINT; the documented
    fix is to switch its handling off and emit BEGIN from SQLAlchemy's event.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_SQLITE_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_SQLITE_IMMEDIATE = "inventory_sqlite_begin_immediate"


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay readable after commit: responses are shaped after the
    # service returns, and nothing should lazily reload then.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@dataclass(frozen=True)
class Database:
    """The engine and the two kinds of session a unit of work can open.

    On SQLite a transaction that reads and then writes fails at once with
    "database is locked" when another writer committed in between; writers
    therefore start with BEGIN IMMEDIATE and queue for the lock up front, while
    readers keep WAL's non-blocking snapshots. On PostgreSQL both are the same.

    ``write_gate`` (SQLite only) queues this process's writers in order, so
    they do not starve each other in SQLite's sleep-and-retry busy handler.
    """

    engine: AsyncEngine
    read_sessions: async_sessionmaker[AsyncSession]
    write_sessions: async_sessionmaker[AsyncSession]
    write_gate: asyncio.Lock | None = None
    after_commit: list[AfterCommit] = field(default_factory=list)
    """Told of the events of every unit of work that commits (change feed, cache)."""

    def sessions(self, *, write: bool) -> async_sessionmaker[AsyncSession]:
        return self.write_sessions if write else self.read_sessions

    def reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A bare connection for one read that needs no ORM objects (no session, no events)."""
        return self.engine.connect()

    def unit_of_work(
        self, *, write: bool, queued: bool = False
    ) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work; ``queued`` writers wait their turn at this process's write gate."""
        gate = self.write_gate if write and queued else None
        return unit_of_work(self.sessions(write=write), self.after_commit, gate=gate)


def open_database(settings: Settings) -> Database:
    engine = create_engine(settings)
    if engine.dialect.name != "sqlite":
        # A read is one statement or several independent ones (READ COMMITTED
        # would give each its own snapshot anyway): in autocommit it is one
        # round trip instead of three.
        writer = transactional(engine)
        return Database(engine, create_sessionmaker(engine), create_sessionmaker(writer))
    writer = engine.execution_options(**{_SQLITE_IMMEDIATE: True})
    return Database(
        engine, create_sessionmaker(engine), create_sessionmaker(writer), asyncio.Lock()
    )

"""Database plumbing: declarative base, engine per URL, and the request's unit of work."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import DateTime, TypeDecorator

from inventory import events
from inventory.config import Settings

logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on every engine.

    SQLite has no time zone type and hands back naive values; PostgreSQL's
    ``timestamptz`` is used as is.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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


AfterCommit = Callable[[Sequence[events.Event]], Awaitable[None]]


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


class UnitOfWork:
    """The request's transaction: an AsyncSession created on first use, ended in one place.

    A request that never touches the database (a cache hit, say) pays for no
    session at all. Events recorded by services are collected at each commit
    and handed to the listeners by ``publish``, once the transaction is over.
    """

    __slots__ = ("_after_commit", "_committed", "_factory", "_session")

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        after_commit: Sequence[AfterCommit] = (),
    ) -> None:
        self._factory = factory
        self._after_commit = after_commit
        self._session: AsyncSession | None = None
        self._committed: list[events.Event] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._factory()
        return self._session

    async def commit(self) -> None:
        if self._session is None:
            return
        await self._session.commit()
        self._committed.extend(events.take(self._session))

    async def close(self) -> None:
        """Roll back anything uncommitted (its events with it) and hand the connection back."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def publish(self) -> None:
        """Hand the committed events to the listeners."""
        committed, self._committed = self._committed, []
        if not committed:
            return
        for listener in self._after_commit:
            try:
                await listener(committed)
            except Exception:
                # The write is committed; failing the request now would only lie about it.
                logger.exception("after-commit listener %r failed", listener)


@asynccontextmanager
async def unit_of_work(
    factory: async_sessionmaker[AsyncSession],
    after_commit: Sequence[AfterCommit] = (),
    *,
    gate: asyncio.Lock | None = None,
) -> AsyncIterator[UnitOfWork]:
    """Commit when the block finishes cleanly, roll back when it raises.

    Listeners hear of what committed after the session is closed and the
    ``gate`` released, so no lock is held while they work.
    """
    uow = UnitOfWork(factory, after_commit)
    try:
        async with gate if gate is not None else nullcontext():
            try:
                yield uow
                await uow.commit()
            finally:
                await uow.close()
    finally:
        await uow.publish()


Violation = Literal["unique", "foreign_key", "check", "not_null", "other"]


def violation_kind(error: IntegrityError) -> Violation:
    """Which kind of constraint an IntegrityError broke, on SQLite and PostgreSQL."""
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    by_sqlstate: dict[str, Violation] = {
        "23505": "unique",
        "23503": "foreign_key",
        "23514": "check",
        "23502": "not_null",
    }
    if sqlstate in by_sqlstate:
        return by_sqlstate[sqlstate]
    message = str(orig).upper()
    for marker, kind in (
        ("UNIQUE CONSTRAINT", "unique"),
        ("FOREIGN KEY CONSTRAINT", "foreign_key"),
        ("CHECK CONSTRAINT", "check"),
        ("NOT NULL CONSTRAINT", "not_null"),
    ):
        if marker in message:
            return kind  # type: ignore[return-value]
    return "other"


async def ping(engine: AsyncEngine, *, within_seconds: float) -> None:
    """Run ``SELECT 1``; raise on failure or when it takes longer than ``within_seconds``."""
    async with asyncio.timeout(within_seconds):
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached within the allowed time."""


async def wait_for_database(engine: AsyncEngine, wait_seconds: float) -> None:
    """Retry a ping with backoff for at most ``wait_seconds``, then raise DatabaseUnavailable."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.25
    while True:
        try:
            await ping(engine, within_seconds=5)
            return
        except Exception as exc:  # any failure to connect means "not yet"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                url = engine.url.render_as_string(hide_password=True)
                raise DatabaseUnavailable(
                    f"database at {url} unreachable after {wait_seconds:g}s: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)

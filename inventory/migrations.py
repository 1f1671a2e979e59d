"""Run Alembic from the service: upgrade/downgrade/inspect on an AsyncEngine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.db import transactional


def _project_root() -> Path:
    """Where alembic.ini and migrations/ are: beside the package in a checkout, else
    the working directory (the image's /app, where the package is installed)."""
    beside = Path(__file__).resolve().parent.parent
    return beside if (beside / "alembic.ini").exists() else Path.cwd()


ROOT = _project_root()
# Any constant works; it only has to be the same for every process of the service.
_MIGRATION_LOCK_ID = 7_310_442_001


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade to ``revision``; concurrent callers on PostgreSQL take turns."""
    await _run(engine, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run(engine, lambda cfg: command.downgrade(cfg, revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def _run(engine: AsyncEngine, action: Callable[[Config], None]) -> None:
    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
            )
        config = alembic_config()
        config.attributes["connection"] = connection
        action(config)
        if connection.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration broke foreign keys: {broken[:10]}")

    if engine.dialect.name != "sqlite":
        async with transactional(engine).begin() as connection:
            await connection.run_sync(run)
        return
    # SQLite alters a table by copying it and dropping the original, and with
    # foreign keys on, dropping a table first deletes its rows, cascading to
    # the tables that refer to it. They are switched off around the migration
    # (a pragma that only takes effect outside a transaction) and checked
    # before it commits.
    async with engine.connect() as connection:
        await connection.run_sync(sqlite_foreign_keys, False)
        try:
            async with connection.begin():
                await connection.run_sync(run)
        finally:
            await connection.run_sync(sqlite_foreign_keys, True)


def sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Switch SQLite's foreign key enforcement on this connection, outside any transaction
    (on the driver's connection, so SQLAlchemy does not begin one first)."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()

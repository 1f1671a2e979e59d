"""Alembic environment: runs migrations on a connection handed in, or on the settings' URL.

`inventory.migrations` hands in a connection (so migrations share the caller's
event loop and lock); the ``alembic`` command line gets a fresh async engine.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from sqlalchemy.engine import Connection

import inventory.models  # noqa: F401 - registers every table on the metadata
from inventory.config import load_settings
from inventory.db import create_engine
from inventory.logs import configure_logging
from inventory.migrations import sqlite_foreign_keys
from inventory.models.base import Base
from inventory.models.columns import UTCDateTime

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Write our column types as plain SQLAlchemy ones, so migrations never import the app."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_item=render_item,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_new_engine() -> None:
    engine = create_engine(load_settings())
    sqlite = engine.dialect.name == "sqlite"
    try:
        async with engine.connect() as connection:
            # As inventory.migrations does: SQLite's table rebuilds need foreign keys off.
            if sqlite:
                await connection.run_sync(sqlite_foreign_keys, False)
            try:
                await connection.run_sync(run_migrations)
                await connection.commit()
            finally:
                if sqlite:
                    await connection.run_sync(sqlite_foreign_keys, True)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")

shared: Connection | None = context.config.attributes.get("connection")
if shared is not None:
    run_migrations(shared)
else:
    if os.environ.get("INVENTORY_ENV") == "production":
        # One format for every line the deployment writes (JSON); see inventory/logs.py.
        configure_logging(load_settings())
    elif context.config.config_file_name:
        fileConfig(context.config.config_file_name, disable_existing_loggers=False)
    asyncio.run(run_with_new_engine())

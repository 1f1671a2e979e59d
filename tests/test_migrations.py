"""Migrations and models agree, and the history goes down and up again on each engine."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from inventory import migrations
from inventory.config import Settings
from inventory.db import Base, create_engine


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    diff: list[Any] = compare_metadata(context, Base.metadata)
    return diff


def _schema(connection: Connection) -> dict[str, Any]:
    """Every table's columns, keys, indexes and constraint names, as the database reports them."""
    inspector = inspect(connection)
    schema = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        schema[table] = {
            "columns": sorted(
                (c["name"], c["nullable"], str(c["type"])) for c in inspector.get_columns(table)
            ),
            "pk": inspector.get_pk_constraint(table)["name"],
            "unique": sorted(str(u["name"]) for u in inspector.get_unique_constraints(table)),
            "checks": sorted(str(c["name"]) for c in inspector.get_check_constraints(table)),
            "fks": sorted(
                (f["name"], f["referred_table"], f["options"].get("ondelete"))
                for f in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)
            ),
        }
    return schema


async def test_migrations_match_models(databases):
    migrated = create_engine(Settings(database_url=await databases.create()))
    from_models = create_engine(Settings(database_url=await databases.create()))
    try:
        await migrations.upgrade(migrated)
        async with migrated.connect() as connection:
            assert await connection.run_sync(_diff) == []
            migrated_schema = await connection.run_sync(_schema)
        async with from_models.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        async with from_models.connect() as connection:
            model_schema = await connection.run_sync(_schema)
        assert migrated_schema == model_schema
        assert set(migrated_schema) == set(Base.metadata.tables)
    finally:
        await migrated.dispose()
        await from_models.dispose()


async def test_upgrade_downgrade_upgrade(databases):
    engine = create_engine(Settings(database_url=await databases.create()))
    try:
        await migrations.upgrade(engine)
        assert await migrations.current_revision(engine) == migrations.head_revision()
        await migrations.downgrade(engine, "base")
        assert await migrations.current_revision(engine) is None
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await migrations.upgrade(engine)
        assert await migrations.current_revision(engine) == migrations.head_revision()
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_upgrade_is_idempotent(databases):
    engine = create_engine(Settings(database_url=await databases.create()))
    try:
        await migrations.upgrade(engine)
        await migrations.upgrade(engine)
        assert await migrations.current_revision(engine) == migrations.head_revision()
    finally:
        await engine.dispose()

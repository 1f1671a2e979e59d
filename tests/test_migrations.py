"""Migrations and models agree, and the history goes down and up again on each engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from inventory import migrations
from inventory.config import Settings
from inventory.db import create_engine
from inventory.models import (
    Product,
    Reservation,
    ReservationLine,
    ReservationStatus,
    SalesOrder,
    SalesOrderLine,
    SalesOrderStatus,
    StockLevel,
    Warehouse,
)
from inventory.models.base import Base
from inventory.stock.holds import HOLD_FOREVER


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    diff: list[Any] = compare_metadata(context, Base.metadata)
    return diff


def _schema(connection: Connection) -> dict[str, Any]:
    """Every table's columns, keys, indexes and constraint names, as the database reports them."""
    inspector = inspect(connection)
    schema: dict[str, dict[str, Any]] = {}
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
        if connection.dialect.name == "sqlite":
            # A table rebuilt by batch mode must keep AUTOINCREMENT (ids never reused).
            sql = connection.scalar(
                text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
                {"name": table},
            )
            schema[table]["autoincrement"] = "AUTOINCREMENT" in str(sql).upper()
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


async def test_balances_and_movement_counts_are_backfilled(databases):
    """Movements recorded before 0004 get the quantity their level had right after them,
    and levels (0005) the number of their movements."""
    engine = create_engine(Settings(database_url=await databases.create()))
    try:
        await migrations.upgrade(engine, "0003")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO products (sku, name, unit_price, reorder_level, is_active,"
                    " version, created_at, updated_at) VALUES"
                    " ('A', 'A', 1, 0, true, 1, :now, :now), ('B', 'B', 1, 0, true, 1, :now, :now)"
                ),
                {"now": datetime.now(UTC)},
            )
            await connection.execute(
                text(
                    "INSERT INTO warehouses (code, name, is_active, created_at, updated_at)"
                    " VALUES ('E', 'E', true, :now, :now), ('W', 'W', true, :now, :now)"
                ),
                {"now": datetime.now(UTC)},
            )
            # Interleaved levels: (product, warehouse, signed quantity).
            ledger = [(1, 1, 5), (1, 2, 7), (2, 1, 1), (1, 1, -3), (1, 2, -7), (1, 1, 10)]
            for product, warehouse, quantity in ledger:
                await connection.execute(
                    text(
                        "INSERT INTO stock_movements (product_id, warehouse_id, kind, quantity,"
                        " created_at) VALUES (:p, :w, 'adjustment', :q, :now)"
                    ),
                    {"p": product, "w": warehouse, "q": quantity, "now": datetime.now(UTC)},
                )
            for product, warehouse, quantity in [(1, 1, 12), (1, 2, 0), (2, 1, 1), (2, 2, 0)]:
                await connection.execute(
                    text(
                        "INSERT INTO stock_levels (product_id, warehouse_id, quantity, updated_at)"
                        " VALUES (:p, :w, :q, :now)"
                    ),
                    {"p": product, "w": warehouse, "q": quantity, "now": datetime.now(UTC)},
                )
        await migrations.upgrade(engine)
        async with engine.connect() as connection:
            counts = await connection.execute(
                text(
                    "SELECT product_id, warehouse_id, movement_count FROM stock_levels"
                    " ORDER BY product_id, warehouse_id"
                )
            )
            assert [tuple(row) for row in counts] == [(1, 1, 3), (1, 2, 2), (2, 1, 1), (2, 2, 0)]
            rows = await connection.execute(
                text("SELECT product_id, warehouse_id, balance FROM stock_movements ORDER BY id")
            )
            assert [tuple(row) for row in rows] == [
                (1, 1, 5),
                (1, 2, 7),
                (2, 1, 1),
                (1, 1, 2),
                (1, 2, 0),
                (1, 1, 12),
            ]
    finally:
        await engine.dispose()


async def test_each_step_down_and_up_again_leaves_the_schema_of_the_models(databases):
    """Down one, two and three revisions from the head and up again: every table a
    downgrade rebuilds keeps what the models declare (SQLite's AUTOINCREMENT included)."""
    migrated = create_engine(Settings(database_url=await databases.create()))
    from_models = create_engine(Settings(database_url=await databases.create()))
    try:
        async with from_models.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        async with from_models.connect() as connection:
            model_schema = await connection.run_sync(_schema)
        await migrations.upgrade(migrated)
        for step in range(1, 4):
            await migrations.downgrade(migrated, f"-{step}")
            await migrations.upgrade(migrated)
            async with migrated.connect() as connection:
                assert await connection.run_sync(_schema) == model_schema, f"down {step}"
    finally:
        await migrated.dispose()
        await from_models.dispose()


async def test_stepping_down_from_orders_lets_levels_lose_the_allocations_holds(databases):
    """0009's downgrade drops sales orders' allocations (the older schema cannot hold a
    hold without expiry), and each level's latest hold falls back to what remains."""
    engine = create_engine(Settings(database_url=await databases.create()))
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    try:
        await migrations.upgrade(engine)
        async with AsyncSession(engine) as session, session.begin():
            bolt = Product(sku="BOLT", name="Bolt", unit_price=Decimal("1.00"))
            nut = Product(sku="NUT", name="Nut", unit_price=Decimal("1.00"))
            main = Warehouse(code="MAIN", name="Main")
            session.add_all([bolt, nut, main])
            await session.flush()
            session.add_all(
                StockLevel(
                    product_id=p.id, warehouse_id=main.id, quantity=10, holds_until=HOLD_FOREVER
                )
                for p in (bolt, nut)
            )
            order = SalesOrder(
                number="SO-000001",
                status=SalesOrderStatus.confirmed,
                lines=[
                    SalesOrderLine(
                        product_id=p.id,
                        warehouse_id=main.id,
                        quantity=5,
                        unit_price=Decimal("1.00"),
                        allocated=5,
                        shipped=0,
                    )
                    for p in (bolt, nut)
                ],
            )
            session.add(order)
            await session.flush()
            session.add(
                Reservation(
                    status=ReservationStatus.held,
                    reference=order.number,
                    expires_at=None,
                    sales_order_id=order.id,
                    lines=[
                        ReservationLine(
                            product_id=line.product_id,
                            warehouse_id=main.id,
                            quantity=5,
                            held_until=HOLD_FOREVER,
                            sales_order_line_id=line.id,
                        )
                        for line in order.lines
                    ],
                )
            )
            # A plain hold on the nuts outlives the downgrade.
            session.add(
                Reservation(
                    status=ReservationStatus.held,
                    expires_at=later,
                    lines=[
                        ReservationLine(
                            product_id=nut.id, warehouse_id=main.id, quantity=2, held_until=later
                        )
                    ],
                )
            )
            bolt_id, nut_id = bolt.id, nut.id
        await migrations.downgrade(engine, "0008")
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(StockLevel.product_id, StockLevel.holds_until).order_by(
                    StockLevel.product_id
                )
            )
            assert [tuple(row) for row in rows] == [(bolt_id, None), (nut_id, later)]
            left = await connection.execute(select(func.count()).select_from(ReservationLine))
            assert left.scalar_one() == 1
    finally:
        await engine.dispose()


async def test_upgrading_keeps_the_rows_of_the_tables_it_rebuilds(databases):
    """On SQLite an altered table is copied and the original dropped: the rows of tables
    that refer to it (reservation lines, to reservations) must survive that."""
    engine = create_engine(Settings(database_url=await databases.create()))
    now = datetime.now(UTC)
    try:
        await migrations.upgrade(engine, "0008")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO products (sku, name, unit_price, reorder_level, is_active,"
                    " version, created_at, updated_at) VALUES ('A', 'A', 1, 0, true, 1, :now, :now)"
                ),
                {"now": now},
            )
            await connection.execute(
                text(
                    "INSERT INTO warehouses (code, name, is_active, created_at, updated_at)"
                    " VALUES ('E', 'E', true, :now, :now)"
                ),
                {"now": now},
            )
            await connection.execute(
                text(
                    "INSERT INTO reservations (status, expires_at, created_at)"
                    " VALUES ('held', :later, :now)"
                ),
                {"now": now, "later": now + timedelta(hours=1)},
            )
            await connection.execute(
                text(
                    "INSERT INTO reservation_lines (reservation_id, product_id, warehouse_id,"
                    " quantity, held_until) VALUES (1, 1, 1, 3, :later)"
                ),
                {"later": now + timedelta(hours=1)},
            )
        await migrations.upgrade(engine)
        async with engine.connect() as connection:
            lines = await connection.execute(
                text("SELECT reservation_id, quantity FROM reservation_lines")
            )
            assert [tuple(row) for row in lines] == [(1, 3)]
    finally:
        await engine.dispose()

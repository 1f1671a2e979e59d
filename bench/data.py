"""The benchmark's database: created for the run, filled fast, dropped afterwards."""

from __future__ import annotations

import csv
import io
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url

from inventory import migrations, security
from inventory.config import Settings
from inventory.csvio import products
from inventory.db import open_database
from inventory.models import Category, Product, Role, StockLevel, Supplier, Warehouse
from inventory.reservations import service as reservations
from inventory.reservations.schemas import ReservationCreate
from inventory.reservations.service import HoldPolicy
from inventory.users import service as users
from inventory.users.schemas import UserCreate

POSTGRES = os.environ.get(
    "INVENTORY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
SECRET = "bench-secret-key-that-is-long-enough-for-hs256"  # noqa: S105 - a throwaway bench key
PAGE = 50


@dataclass(frozen=True)
class Prepared:
    product_id: int
    """The product the single reads ask for."""
    write_product_id: int
    write_warehouse_id: int
    ship_product_id: int
    """Shipped from in ``write_warehouse_id``; no hold on its level."""
    held_product_id: int
    """Shipped from in ``write_warehouse_id``; a live hold on its level all along."""
    tokens: dict[Role, str]
    ledger_rows: int


def products_csv(rows: int, run: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(products.COLUMNS)
    for n in range(rows):
        writer.writerow(
            [
                f"B{run}-{n:07d}",
                f"Bench item {n}",
                "",
                f"Cat {n % 20}",
                f"Sup {n % 7}",
                f"{n % 1000}.{n % 100:02d}",
                n % 50,
                "true",
            ]
        )
    return buffer.getvalue().encode()


async def postgres_database() -> tuple[str, Callable[[], Awaitable[None]]] | None:
    """A fresh PostgreSQL database and how to drop it; None when PostgreSQL is away."""
    admin_dsn = asyncpg_dsn(POSTGRES)
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"PostgreSQL unreachable ({exc}); benchmarking SQLite", file=sys.stderr)
        return None
    name = f"inventory_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    return make_url(POSTGRES).set(database=name).render_as_string(False), drop


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


LEDGER_SQL = {
    # One statement each: a million rows in seconds, numbered as the service numbers them.
    "postgresql": """
        INSERT INTO stock_movements
            (product_id, warehouse_id, kind, quantity, balance, reference, created_at)
        SELECT :product, :warehouse, 'receipt', 1, n, 'R-' || n,
               now() - interval '1 day' + n * interval '1 microsecond'
        FROM generate_series(1, :rows) AS n
    """,
    "sqlite": """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)
        INSERT INTO stock_movements
            (product_id, warehouse_id, kind, quantity, balance, reference, created_at)
        SELECT :product, :warehouse, 'receipt', 1, i, 'R-' || i, datetime('now', '-1 day')
        FROM n
    """,
}


async def prepare(database_url: str, ledger_rows: int) -> Prepared:
    """Migrate; users of three roles; a page of products with levels; a long ledger."""
    settings = Settings(database_url=database_url, secret_key=SecretStr(SECRET))
    database = open_database(settings)
    try:
        await migrations.upgrade(database.engine)
        async with database.unit_of_work(write=True) as uow:
            session = uow.session
            tokens = {}
            for role in (Role.viewer, Role.clerk, Role.manager):
                data = UserCreate.model_validate(
                    {
                        "email": f"{role.value}@bench.example",
                        "password": "bench-password",
                        "role": role,
                    }
                )
                user = await users.create_user(session, data)
                tokens[role] = security.create_access_token(user.id, role, settings).token
            categories = [Category(name=f"Category {n}") for n in range(3)]
            suppliers = [Supplier(name=f"Supplier {n}") for n in range(2)]
            warehouses = [Warehouse(code=f"W{n}", name=f"Warehouse {n}") for n in range(2)]
            ledger_warehouse = Warehouse(code="LEDGER", name="Ledger")
            session.add_all([*categories, *suppliers, *warehouses, ledger_warehouse])
            await session.flush()
            page = [
                Product(
                    sku=f"PAGE-{n:03d}",
                    name=f"Page item {n}",
                    unit_price=Decimal("9.99"),
                    category_id=categories[n % 3].id,
                    supplier_id=suppliers[n % 2].id,
                    reorder_level=5,
                )
                for n in range(PAGE + 10)
            ]
            session.add_all(page)
            await session.flush()
            plenty = {page[2].id: 10**9, page[3].id: 10**9}
            session.add_all(
                StockLevel(product_id=p.id, warehouse_id=w.id, quantity=plenty.get(p.id, 100))
                for p in page
                for w in warehouses
            )
            await session.flush()
            await reservations.hold(
                session,
                None,
                ReservationCreate.model_validate(
                    {
                        "lines": [
                            {
                                "product_id": page[3].id,
                                "warehouse_id": warehouses[0].id,
                                "quantity": 1,
                            }
                        ],
                        "ttl_seconds": 86_400,
                    }
                ),
                HoldPolicy(86_400, 86_400),
            )
            dialect = database.engine.dialect.name
            await session.execute(
                text(LEDGER_SQL[dialect]),
                {"product": page[0].id, "warehouse": ledger_warehouse.id, "rows": ledger_rows},
            )
            session.add(
                StockLevel(
                    product_id=page[0].id,
                    warehouse_id=ledger_warehouse.id,
                    quantity=ledger_rows,
                    movement_count=ledger_rows,
                )
            )
        return Prepared(
            page[0].id, page[1].id, warehouses[0].id, page[2].id, page[3].id, tokens, ledger_rows
        )
    finally:
        await database.engine.dispose()

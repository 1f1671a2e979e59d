"""Streamed CSV exports: rows are read in batches and written as they come.

Memory stays flat however many rows there are: each batch is formatted and
handed on before the next is read, and the query runs on a server-side cursor
(PostgreSQL) with a fixed partition size.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Select, select

from inventory.csvio.cells import text
from inventory.csvio.products import EXPORT_COLUMNS, price_cell
from inventory.db import Database
from inventory.models import Category, Product, StockLevel, StockMovement, Supplier, User, Warehouse
from inventory.products.service import ProductFilter, filtered
from inventory.stock.service import LedgerFilter, LevelFilter

BATCH = 2000

Rows = Select[*tuple[Any, ...]]

STOCK_COLUMNS = ("sku", "warehouse", "quantity", "reorder_level")
MOVEMENT_COLUMNS = ("id", "created_at", "sku", "warehouse", "kind", "quantity", "reference", "user")


def products_query(flt: ProductFilter) -> Rows:
    stmt = (
        select(
            Product.id,
            Product.sku,
            Product.name,
            Product.description,
            Category.name,
            Supplier.name,
            Product.unit_price,
            Product.reorder_level,
            Product.is_active,
        )
        .outerjoin(Category, Category.id == Product.category_id)
        .outerjoin(Supplier, Supplier.id == Product.supplier_id)
        .order_by(Product.sku)
    )
    return filtered(stmt, flt)


def stock_query(flt: LevelFilter) -> Rows:
    return (
        select(Product.sku, Warehouse.code, StockLevel.quantity, Product.reorder_level)
        .join(Product, Product.id == StockLevel.product_id)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .where(*flt.conditions())
        .order_by(StockLevel.id)
    )


def movements_query(flt: LedgerFilter) -> Rows:
    return (
        select(
            StockMovement.id,
            StockMovement.created_at,
            Product.sku,
            Warehouse.code,
            StockMovement.kind,
            StockMovement.quantity,
            StockMovement.reference,
            User.email,
        )
        .join(Product, Product.id == StockMovement.product_id)
        .join(Warehouse, Warehouse.id == StockMovement.warehouse_id)
        .outerjoin(User, User.id == StockMovement.user_id)
        .where(*flt.conditions())
        .order_by(StockMovement.id)
    )


def _product_cells(row: Sequence[Any]) -> list[str]:
    id_, sku, name, description, category, supplier, price, reorder, active = row
    return [
        str(id_),
        *(text(v) for v in (sku, name, description, category, supplier)),
        price_cell(price),
        str(reorder),
        text(active),
    ]


def _movement_cells(row: Sequence[Any]) -> list[str]:
    id_, created_at, sku, warehouse, kind, quantity, reference, user = row
    return [
        str(id_),
        created_at.isoformat(),
        text(sku),
        text(warehouse),
        kind.value,
        str(quantity),
        text(reference),
        text(user),
    ]


def _plain_cells(row: Sequence[Any]) -> list[str]:
    return [text(value) for value in row]


EXPORTS = {
    "products": (EXPORT_COLUMNS, _product_cells),
    "stock": (STOCK_COLUMNS, _plain_cells),
    "movements": (MOVEMENT_COLUMNS, _movement_cells),
}


async def stream_csv(database: Database, kind: str, query: Rows) -> AsyncIterator[bytes]:
    """The CSV of ``query``'s rows, header first, one chunk per batch of rows."""
    columns, cells = EXPORTS[kind]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    yield buffer.getvalue().encode()
    async with database.read_sessions() as session:
        result = await session.stream(query.execution_options(yield_per=BATCH))
        async for partition in result.partitions(BATCH):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(cells(row) for row in partition)
            yield buffer.getvalue().encode()

"""Streamed CSV exports: rows are read in batches and written as they come.

Memory stays flat however many rows there are. On PostgreSQL the rows come
through the COPY protocol (formatted and neutralised in SQL, several times
faster than formatting in Python); elsewhere through a server-side cursor read
in fixed-size partitions. Both produce the same bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, String, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from inventory.csvio.cells import FORMULA_STARTS, csv_line, text
from inventory.csvio.products import EXPORT_COLUMNS
from inventory.db import Database
from inventory.kit.money import cost_text, price_text
from inventory.models import (
    Category,
    Product,
    PurchaseOrder,
    PurchaseOrderLine,
    SalesOrder,
    SalesOrderLine,
    StockLevel,
    StockMovement,
    Supplier,
    User,
    Warehouse,
)
from inventory.orders.filters import PurchaseOrderFilter, SalesOrderFilter
from inventory.products.filters import ProductFilter
from inventory.stock.filters import LedgerFilter, LevelFilter

BATCH = 2000
SLICE = 250
"""Rows formatted in Python at a time: a slice costs the event loop a few milliseconds, so a
download never holds up the process's other requests for long."""
Rows = Select[*tuple[Any, ...]]

# How each kind of cell is written: in Python, and the same in PostgreSQL's SQL.
_PYTHON: dict[str, Callable[[Any], str]] = {
    "text": text,
    "number": str,
    "price": price_text,
    "cost": cost_text,
    "bool": text,
    "date": lambda v: v.isoformat(),
    "time": lambda v: v.isoformat(timespec="microseconds"),
    "enum": lambda v: v.value,
}
_FORMULA = "^'*[" + "".join("\\" + c if c in "-\\]^" else c for c in FORMULA_STARTS) + "]"


def _postgres(kind: str, column: Any) -> ColumnElement[Any]:
    if kind == "text":
        return case((column.regexp_match(_FORMULA), literal("'") + column), else_=column)
    if kind == "bool":
        return case((column, literal("true")), else_=literal("false"))
    if kind == "time":
        utc = func.timezone("UTC", column)
        return func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
    if kind == "date":
        return func.to_char(column, "YYYY-MM-DD")
    if kind == "price":
        return func.to_char(column, "FM9999999999990.00")
    if kind == "cost":
        return func.to_char(column, "FM9999999999990.0000")
    return cast(column, String)


@dataclass(frozen=True)
class Export:
    """One export: its header, its columns with their kinds, and the rest of its query."""

    name: str
    header: tuple[str, ...]
    columns: list[tuple[str, Any]]  # (kind, column)
    shape: Callable[[Rows], Rows]

    def query(self, *, for_copy: bool = False) -> Rows:
        columns = [_postgres(k, c) if for_copy else c for k, c in self.columns]
        return self.shape(select(*columns))

    def line(self, row: Any) -> str:
        return csv_line(
            None if value is None else _PYTHON[kind](value)
            for (kind, _), value in zip(self.columns, row, strict=True)
        )


def products_export(flt: ProductFilter) -> Export:
    def shape(stmt: Rows) -> Rows:
        stmt = stmt.outerjoin(Category, Category.id == Product.category_id).outerjoin(
            Supplier, Supplier.id == Product.supplier_id
        )
        # By id, not SKU: text order depends on the database's collation.
        return stmt.where(*flt.conditions()).order_by(Product.id)

    return Export(
        "products",
        EXPORT_COLUMNS,
        [
            ("number", Product.id),
            ("text", Product.sku),
            ("text", Product.name),
            ("text", Product.description),
            ("text", Category.name),
            ("text", Supplier.name),
            ("price", Product.unit_price),
            ("number", Product.reorder_level),
            ("bool", Product.is_active),
        ],
        shape,
    )


def stock_export(flt: LevelFilter) -> Export:
    def shape(stmt: Rows) -> Rows:
        return (
            stmt.join(Product, Product.id == StockLevel.product_id)
            .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
            .where(*flt.conditions(reorder_level=Product.reorder_level))
            .order_by(StockLevel.id)
        )

    return Export(
        "stock",
        ("sku", "warehouse", "quantity", "reorder_level"),
        [
            ("text", Product.sku),
            ("text", Warehouse.code),
            ("number", StockLevel.quantity),
            ("number", Product.reorder_level),
        ],
        shape,
    )


def movements_export(flt: LedgerFilter) -> Export:
    def shape(stmt: Rows) -> Rows:
        return (
            stmt.join(Product, Product.id == StockMovement.product_id)
            .join(Warehouse, Warehouse.id == StockMovement.warehouse_id)
            .outerjoin(User, User.id == StockMovement.user_id)
            .where(*flt.conditions())
            .order_by(StockMovement.id)
        )

    return Export(
        "movements",
        ("id", "created_at", "sku", "warehouse", "kind", "quantity", "reference", "user"),
        [
            ("number", StockMovement.id),
            ("time", StockMovement.created_at),
            ("text", Product.sku),
            ("text", Warehouse.code),
            ("enum", StockMovement.kind),
            ("number", StockMovement.quantity),
            ("text", StockMovement.reference),
            ("text", User.email),
        ],
        shape,
    )


def purchase_orders_export(flt: PurchaseOrderFilter) -> Export:
    """One row per purchase order line, by order, then line."""
    # The filter's "has a line of" tests read the lines table in subqueries: the
    # rows' own lines are an alias, so those subqueries stay whole.
    line = aliased(PurchaseOrderLine)

    def shape(stmt: Rows) -> Rows:
        return (
            stmt.join(line, line.order_id == PurchaseOrder.id)
            .join(Supplier, Supplier.id == PurchaseOrder.supplier_id)
            .join(Warehouse, Warehouse.id == PurchaseOrder.warehouse_id)
            .join(Product, Product.id == line.product_id)
            .where(*flt.conditions())
            .order_by(PurchaseOrder.id, line.id)
        )

    return Export(
        "purchase-orders",
        (
            "number",
            "status",
            "supplier",
            "warehouse",
            "reference",
            "expected_on",
            "line_id",
            "sku",
            "quantity",
            "unit_cost",
            "received",
        ),
        [
            ("text", PurchaseOrder.number),
            ("enum", PurchaseOrder.status),
            ("text", Supplier.name),
            ("text", Warehouse.code),
            ("text", PurchaseOrder.reference),
            ("date", PurchaseOrder.expected_on),
            ("number", line.id),
            ("text", Product.sku),
            ("number", line.quantity),
            ("cost", line.unit_cost),
            ("number", line.received),
        ],
        shape,
    )


def sales_orders_export(flt: SalesOrderFilter) -> Export:
    """One row per sales order line, by order, then line."""
    line = aliased(SalesOrderLine)  # as for purchase orders

    def shape(stmt: Rows) -> Rows:
        return (
            stmt.join(line, line.order_id == SalesOrder.id)
            .join(Product, Product.id == line.product_id)
            .join(Warehouse, Warehouse.id == line.warehouse_id)
            .where(*flt.conditions())
            .order_by(SalesOrder.id, line.id)
        )

    return Export(
        "sales-orders",
        (
            "number",
            "status",
            "customer_reference",
            "line_id",
            "sku",
            "warehouse",
            "quantity",
            "unit_price",
            "allocated",
            "shipped",
        ),
        [
            ("text", SalesOrder.number),
            ("enum", SalesOrder.status),
            ("text", SalesOrder.customer_reference),
            ("number", line.id),
            ("text", Product.sku),
            ("text", Warehouse.code),
            ("number", line.quantity),
            ("price", line.unit_price),
            ("number", line.allocated),
            ("number", line.shipped),
        ],
        shape,
    )


def _header(export: Export) -> bytes:
    return csv_line(export.header).encode()


async def stream_csv(database: Database, export: Export) -> AsyncGenerator[bytes, None]:
    """The CSV of ``export``, header first, then one chunk per batch of rows.

    Closing the generator early (a client gone, a download cut off) releases
    its database connection before ``aclose()`` returns.
    """
    yield _header(export)
    if database.engine.dialect.name == "postgresql":
        async with contextlib.aclosing(_copy(database, export)) as chunks:
            async for chunk in chunks:
                yield chunk
        return
    async with database.read_sessions() as session:
        # A partition size is a must: without one, partitions() buffers everything.
        result = await session.stream(export.query().execution_options(yield_per=BATCH))
        try:
            async for partition in result.partitions(BATCH):
                for start in range(0, len(partition), SLICE):
                    rows = partition[start : start + SLICE]
                    yield "".join(export.line(row) for row in rows).encode()
        finally:
            await result.close()


async def _copy(database: Database, export: Export) -> AsyncGenerator[bytes, None]:
    """Rows through PostgreSQL's COPY protocol, handed on as they arrive.

    asyncpg calls ``output`` for each chunk; a small queue hands them to this
    generator, so a slow client slows the COPY instead of filling memory. If
    the generator is closed before the COPY finished, the COPY is cancelled
    and its connection closed, not returned to the pool halfway through a
    COPY, so the server session ends at once.
    """
    # IN lists are expanded into their parameters here: COPY takes no expanding ones.
    compiled = export.query(for_copy=True).compile(
        dialect=database.engine.dialect, compile_kwargs={"render_postcompile": True}
    )
    arguments = [compiled.params[name] for name in compiled.positiontup or ()]
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)

    async def output(chunk: bytes | bytearray) -> None:
        await chunks.put(bytes(chunk))  # StreamingResponse refuses bytearray

    async with database.engine.connect() as connection:
        copying = asyncio.create_task(
            _run_copy(connection, str(compiled), arguments, output, chunks)
        )
        finished = False
        try:
            while (chunk := await chunks.get()) is not None:
                yield chunk
            await copying  # re-raises a failed COPY
            finished = True
        finally:
            if not finished:
                copying.cancel()
                await asyncio.wait({copying})
                if not copying.cancelled():
                    copying.exception()  # seen here; the COPY's own error was raised above
                await connection.invalidate()


async def _run_copy(
    connection: AsyncConnection,
    sql: str,
    arguments: list[Any],
    output: Callable[[bytes | bytearray], Any],
    chunks: asyncio.Queue[bytes | None],
) -> None:
    try:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_from_query(sql, *arguments, output=output, format="csv")
    except asyncio.CancelledError:
        raise  # the reader is gone: nobody waits for the end mark (and the queue may be full)
    except BaseException:
        await chunks.put(None)
        raise
    await chunks.put(None)

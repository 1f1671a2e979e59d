"""Purchase and sales orders as CSV: one row per line, by order then line, narrowed by the
order lists' filters, with cells a spreadsheet would run neutralised."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from inventory.models import (
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderStatus,
    SalesOrder,
    SalesOrderLine,
    SalesOrderStatus,
)
from tests.helpers import API, create, create_product, error_locs

EXPORTS = f"{API}/exports"
PO_HEADER = [
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
]
SO_HEADER = [
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
]


def rows(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.text)))


@pytest.fixture
async def orders(app: FastAPI, client: httpx.AsyncClient) -> dict[str, Any]:
    """Two purchase orders and two sales orders, written straight to the tables."""
    main = await create(client, "/warehouses", code="MAIN", name="Main")
    east = await create(client, "/warehouses", code="EAST", name="East")
    acme = await create(client, "/suppliers", name="Acme, Inc.")
    evil = await create(client, "/suppliers", name="=HYPERLINK(1)")
    bolt = await create_product(client, "BOLT-1")
    nut = await create_product(client, "NUT-1")
    async with app.state.db.unit_of_work(write=True) as uow:
        first = PurchaseOrder(
            number="PO-000001",
            status=PurchaseOrderStatus.partially_received,
            supplier_id=acme["id"],
            warehouse_id=main["id"],
            reference="Q3 restock",
            expected_on=date(2026, 12, 24),
            lines=[
                PurchaseOrderLine(
                    product_id=bolt["id"], quantity=10, unit_cost=Decimal("2.5"), received=10
                ),
                PurchaseOrderLine(
                    product_id=nut["id"], quantity=5, unit_cost=Decimal("0.1234"), received=0
                ),
            ],
        )
        second = PurchaseOrder(
            number="PO-000002",
            status=PurchaseOrderStatus.draft,
            supplier_id=evil["id"],
            warehouse_id=east["id"],
            reference="+1 urgent",
            lines=[PurchaseOrderLine(product_id=nut["id"], quantity=7, unit_cost=Decimal(3))],
        )
        sold = SalesOrder(
            number="SO-000001",
            status=SalesOrderStatus.confirmed,
            customer_reference="@cart-9",
            lines=[
                SalesOrderLine(
                    product_id=bolt["id"],
                    warehouse_id=main["id"],
                    quantity=4,
                    unit_price=Decimal("9.9"),
                    allocated=4,
                    shipped=1,
                ),
                SalesOrderLine(
                    product_id=nut["id"],
                    warehouse_id=east["id"],
                    quantity=3,
                    unit_price=Decimal(1),
                    allocated=1,
                ),
            ],
        )
        draft = SalesOrder(
            number="SO-000002",
            status=SalesOrderStatus.draft,
            customer_reference=None,
            lines=[
                SalesOrderLine(
                    product_id=nut["id"], warehouse_id=main["id"], quantity=2, unit_price=0
                )
            ],
        )
        uow.session.add_all([first, second, sold, draft])
        await uow.session.flush()
        made = {
            "po_lines": [ln.id for ln in (*first.lines, *second.lines)],
            "so_lines": [ln.id for ln in (*sold.lines, *draft.lines)],
        }
    return made | {
        "main": main["id"],
        "east": east["id"],
        "acme": acme["id"],
        "bolt": bolt["id"],
        "nut": nut["id"],
    }


async def test_purchase_orders_export_one_row_per_line(viewer, orders):
    response = await viewer.get(f"{EXPORTS}/purchase-orders.csv")
    assert response.headers["content-disposition"] == ('attachment; filename="purchase-orders.csv"')
    a, b, c = (str(i) for i in orders["po_lines"])
    assert rows(response) == [
        PO_HEADER,
        ["PO-000001", "partially_received", "Acme, Inc.", "MAIN", "Q3 restock", "2026-12-24",
         a, "BOLT-1", "10", "2.5000", "10"],
        ["PO-000001", "partially_received", "Acme, Inc.", "MAIN", "Q3 restock", "2026-12-24",
         b, "NUT-1", "5", "0.1234", "0"],
        # Cells a spreadsheet would run are prefixed; an absent date is an empty cell.
        ["PO-000002", "draft", "'=HYPERLINK(1)", "EAST", "'+1 urgent", "",
         c, "NUT-1", "7", "3.0000", "0"],
    ]  # fmt: skip


async def test_sales_orders_export_one_row_per_line(viewer, orders):
    response = await viewer.get(f"{EXPORTS}/sales-orders.csv")
    assert response.headers["content-disposition"] == 'attachment; filename="sales-orders.csv"'
    a, b, c = (str(i) for i in orders["so_lines"])
    assert rows(response) == [
        SO_HEADER,
        ["SO-000001", "confirmed", "'@cart-9", a, "BOLT-1", "MAIN", "4", "9.90", "4", "1"],
        ["SO-000001", "confirmed", "'@cart-9", b, "NUT-1", "EAST", "3", "1.00", "1", "0"],
        ["SO-000002", "draft", "", c, "NUT-1", "MAIN", "2", "0.00", "0", "0"],
    ]


async def test_exports_take_the_order_lists_filters(viewer, orders):
    async def numbers(kind: str, **params: Any) -> list[tuple[str, str]]:
        found = rows(await viewer.get(f"{EXPORTS}/{kind}.csv", params=params))
        return [(row[0], row[SO_HEADER.index("sku") if kind == "sales-orders" else 7])
                for row in found[1:]]  # fmt: skip

    assert await numbers("purchase-orders", status="draft") == [("PO-000002", "NUT-1")]
    assert await numbers("purchase-orders", supplier_id=orders["acme"]) == [
        ("PO-000001", "BOLT-1"),
        ("PO-000001", "NUT-1"),
    ]
    # "Orders with a line of it": the whole order, every line.
    assert await numbers("purchase-orders", product_id=orders["bolt"]) == [
        ("PO-000001", "BOLT-1"),
        ("PO-000001", "NUT-1"),
    ]
    assert await numbers("purchase-orders", warehouse_id=orders["east"]) == [("PO-000002", "NUT-1")]
    assert await numbers("sales-orders", warehouse_id=orders["east"]) == [
        ("SO-000001", "BOLT-1"),
        ("SO-000001", "NUT-1"),
    ]
    assert await numbers("sales-orders", customer_reference="@cart-9", status="confirmed") == [
        ("SO-000001", "BOLT-1"),
        ("SO-000001", "NUT-1"),
    ]
    assert await numbers("sales-orders", backordered="true") == [
        ("SO-000001", "BOLT-1"),
        ("SO-000001", "NUT-1"),
    ]
    assert await numbers("sales-orders", backordered="false") == [("SO-000002", "NUT-1")]
    assert await numbers("sales-orders", status="shipped") == []


@pytest.mark.parametrize(
    ("kind", "params", "loc"),
    [
        ("purchase-orders", {"status": "lost"}, ["query", "status"]),
        ("purchase-orders", {"supplier_id": "0"}, ["query", "supplier_id"]),
        ("sales-orders", {"status": "placed"}, ["query", "status"]),
        ("sales-orders", {"product_id": "x"}, ["query", "product_id"]),
    ],
)
async def test_bad_filters_are_refused(viewer, kind, params, loc):
    response = await viewer.get(f"{EXPORTS}/{kind}.csv", params=params)
    assert error_locs(response) == [loc]

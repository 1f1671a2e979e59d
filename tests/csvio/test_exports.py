"""Streamed exports: the right rows and columns, safe cells, flat memory, and a round trip."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.config import Settings
from inventory.models import MovementKind, Role, StockLevel, StockMovement
from inventory.models.columns import utcnow
from tests.csvio.test_imports import finished, upload
from tests.helpers import API, create, create_product
from tests.processes import Server, server_environment, serving

EXPORTS = f"{API}/exports"


def rows(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.text)))


async def test_products_export_has_the_import_columns_plus_id(client):
    tools = await create(client, "/categories", name="Tools")
    acme = await create(client, "/suppliers", name="Acme")
    product = await create_product(
        client,
        "HAM-1",
        name="Hammer",
        unit_price="12.5",
        category_id=tools["id"],
        supplier_id=acme["id"],
        reorder_level=4,
        description="Steel, heavy",
    )
    await create_product(client, "NUT-1", name="Nut", unit_price="0.10", is_active=False)
    response = await client.get(f"{EXPORTS}/products.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="products.csv"'
    assert rows(response) == [
        [
            "id",
            "sku",
            "name",
            "description",
            "category",
            "supplier",
            "unit_price",
            "reorder_level",
            "is_active",
        ],
        [
            str(product["id"]),
            "HAM-1",
            "Hammer",
            "Steel, heavy",
            "Tools",
            "Acme",
            "12.50",
            "4",
            "true",
        ],
        [rows(response)[2][0], "NUT-1", "Nut", "", "", "", "0.10", "0", "false"],
    ]


async def test_products_export_takes_the_list_filters(client):
    await create_product(client, "HAM-1", name="Hammer")
    await create_product(client, "NUT-1", name="Nut", is_active=False)
    only = rows(await client.get(f"{EXPORTS}/products.csv", params={"q": "ham"}))
    assert [r[1] for r in only[1:]] == ["HAM-1"]
    inactive = rows(await client.get(f"{EXPORTS}/products.csv", params={"is_active": "false"}))
    assert [r[1] for r in inactive[1:]] == ["NUT-1"]


# Tab and CR cannot arrive through the API (text is stripped); test_cells covers them.
@pytest.mark.parametrize("dangerous", ["=1+1", "+SUM(A1)", "-2+3", "@cmd"])
async def test_formula_cells_are_neutralised(client, dangerous):
    await create_product(client, "F-1", name="Formula", description=dangerous)
    [header, row] = rows(await client.get(f"{EXPORTS}/products.csv"))
    assert row[header.index("description")] == "'" + dangerous


async def test_stock_and_movement_exports(client, accounts):
    main = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "HAM-1", reorder_level=3)
    body = {"product_id": product["id"], "warehouse_id": main["id"]}
    await client.post(
        f"{API}/stock/movements",
        json=body | {"kind": "receipt", "quantity": 5, "reference": "=PO-1"},
    )
    await client.post(f"{API}/stock/movements", json=body | {"kind": "shipment", "quantity": 2})
    stock = rows(await client.get(f"{EXPORTS}/stock.csv"))
    assert stock == [["sku", "warehouse", "quantity", "reorder_level"], ["HAM-1", "MAIN", "3", "3"]]
    # The list's filters, the reorder one included (found by schemathesis: a 500 mid-stream).
    low = rows(await client.get(f"{EXPORTS}/stock.csv", params={"below_reorder": "true"}))
    assert low == stock
    high = rows(await client.get(f"{EXPORTS}/stock.csv", params={"below_reorder": "false"}))
    assert high == stock[:1]
    ledger = rows(await client.get(f"{EXPORTS}/movements.csv"))
    assert ledger[0] == [
        "id",
        "created_at",
        "sku",
        "warehouse",
        "kind",
        "quantity",
        "reference",
        "user",
    ]
    assert [(r[2], r[3], r[4], r[5], r[6], r[7]) for r in ledger[1:]] == [
        ("HAM-1", "MAIN", "receipt", "5", "'=PO-1", "admin@example.com"),
        ("HAM-1", "MAIN", "shipment", "-2", "", "admin@example.com"),
    ]
    # The same timestamp format on every engine (PostgreSQL formats it in SQL).
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", r[1]) for r in ledger[1:]
    )
    receipts = rows(await client.get(f"{EXPORTS}/movements.csv", params={"kind": "receipt"}))
    assert len(receipts) == 2


async def test_round_trip_export_import_export_is_identical(client):
    tools = await create(client, "/categories", name="Tools")
    await create_product(client, "A-1", name="Plain", unit_price="1.00", category_id=tools["id"])
    await create_product(
        client,
        "B-2",
        name='=Tricky, "quoted"',
        description="-dash\nnew line",
        unit_price="9.99",
        reorder_level=7,
        is_active=False,
    )
    first = (await client.get(f"{EXPORTS}/products.csv")).content
    job = await finished(client, await upload(client, first))
    assert job["status"] == "succeeded", job
    second = (await client.get(f"{EXPORTS}/products.csv")).content
    assert second == first
    versions = {
        p["sku"]: p["version"] for p in (await client.get(f"{API}/products")).json()["items"]
    }
    assert versions == {"A-1": 1, "B-2": 1}


MOVEMENTS = 200_000


@pytest.fixture
def server(settings: Settings, accounts) -> Iterator[Server]:
    with serving("--no-migrate", **server_environment(settings)) as running:
        yield running


async def _many_movements(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """200,000 ledger rows, written in bulk (through the API this would take minutes)."""
    warehouse = await create(client, "/warehouses", code="BULK", name="Bulk")
    product = await create_product(client, "BULK-1")
    start = utcnow() - timedelta(days=1)
    async with engine.begin() as connection:
        for offset in range(0, MOVEMENTS, 20_000):
            await connection.execute(
                insert(StockMovement),
                [
                    {
                        "product_id": product["id"],
                        "warehouse_id": warehouse["id"],
                        "kind": MovementKind.receipt,
                        "quantity": 1,
                        "balance": n + 1,
                        "reference": f"R-{n}",
                        "created_at": start + timedelta(microseconds=n),
                    }
                    for n in range(offset, offset + 20_000)
                ],
            )
        await connection.execute(
            insert(StockLevel).values(
                product_id=product["id"],
                warehouse_id=warehouse["id"],
                quantity=MOVEMENTS,
                updated_at=utcnow(),
            )
        )


async def test_200k_movements_stream_with_flat_memory(client, engine, accounts, server):
    await _many_movements(client, engine)
    headers = accounts[Role.viewer].headers
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=300) as http:
        # Warm up the route (imports, pools) on an export with no rows.
        warm = await http.get(f"{EXPORTS}/movements.csv", params={"since": "2999-01-01T00:00:00"})
        assert warm.status_code == 200
        before = server.peak_rss_bytes()
        lines = 0
        last: list[Any] = []
        async with http.stream("GET", f"{EXPORTS}/movements.csv") as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line:
                    lines += 1
                    last = line.split(",")
        growth = server.peak_rss_bytes() - before
    assert lines == MOVEMENTS + 1
    assert last[6] == f"R-{MOVEMENTS - 1}"
    assert growth < 50 * 1024 * 1024, f"peak RSS grew by {growth / 2**20:.1f} MiB"


async def test_export_bytes_are_the_same_on_every_engine(client):
    """PostgreSQL writes through COPY, SQLite through Python: the bytes must agree."""
    await create_product(
        client, "Q-1", name='say "hi", twice', description="carriage\rreturn", unit_price="1.5"
    )
    await create_product(client, "Q-2", name="'=already", description="", unit_price="0")
    await create_product(client, "Q-3", name="@at", description="line\nbreak", unit_price="10")
    body = (await client.get(f"{EXPORTS}/products.csv")).text
    ids = [line.split(",")[0] for line in body.splitlines()[1:] if line[:1].isdigit()]
    assert body == (
        "id,sku,name,description,category,supplier,unit_price,reorder_level,is_active\n"
        f'{ids[0]},Q-1,"say ""hi"", twice","carriage\rreturn",,,1.50,0,true\n'
        f"{ids[1]},Q-2,''=already,,,,0.00,0,true\n"
        f'{ids[2]},Q-3,\'@at,"line\nbreak",,,10.00,0,true\n'
    )
    job = await finished(client, await upload(client, body.encode()))
    assert job["status"] == "succeeded", job
    assert (await client.get(f"{EXPORTS}/products.csv")).text == body
    names = sorted(p["name"] for p in (await client.get(f"{API}/products")).json()["items"])
    assert names == ["'=already", "@at", 'say "hi", twice']


# Each export reads its list's filter declaration: it refuses the same values, in the
# same words and places.
REFUSED_FILTERS = [
    ("products", "products.csv", {"q": "a\u0000"}),
    ("products", "products.csv", {"q": "x" * 201}),
    ("products", "products.csv", {"category_id": "0"}),
    ("products", "products.csv", {"is_active": "maybe"}),
    ("stock", "stock.csv", {"below_reorder": "sometimes"}),
    ("stock", "stock.csv", {"warehouse_id": "x"}),
    ("stock/movements", "movements.csv", {"kind": "theft"}),
    ("stock/movements", "movements.csv", {"since": "yesterday"}),
    ("stock/movements", "movements.csv", {"until": "0001-01-01T00:00:00+14:00"}),
]


@pytest.mark.parametrize(("path", "export", "params"), REFUSED_FILTERS, ids=str)
async def test_exports_refuse_what_their_lists_refuse(client, path, export, params):
    listed = await client.get(f"{API}/{path}", params=params)
    exported = await client.get(f"{EXPORTS}/{export}", params=params)
    assert listed.status_code == exported.status_code == 422
    assert listed.json()["errors"] == exported.json()["errors"]
    assert len(exported.json()["errors"]) == 1

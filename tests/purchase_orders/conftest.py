"""What every purchase order test starts from: a supplier, two warehouses, three products,
and helpers to read an order's effects the way a user would."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import API, collect_pages, create, create_product

ORDERS = f"{API}/purchase-orders"


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    main = await create(client, "/warehouses", code="MAIN", name="Main")
    east = await create(client, "/warehouses", code="EAST", name="East")
    acme = await create(client, "/suppliers", name="Acme")
    bolt = await create_product(client, "BOLT-1")
    nut = await create_product(client, "NUT-1")
    washer = await create_product(client, "WASHER-1")
    return {
        "main": main["id"],
        "east": east["id"],
        "acme": acme["id"],
        "bolt": bolt["id"],
        "nut": nut["id"],
        "washer": washer["id"],
    }


def order_body(world: dict[str, Any], *lines: tuple[str, int, str], **extra: Any) -> dict[str, Any]:
    """A purchase order for the main warehouse from Acme: (product, quantity, unit cost)."""
    return {
        "supplier_id": world["acme"],
        "warehouse_id": world["main"],
        "lines": [
            {"product_id": world[product], "quantity": quantity, "unit_cost": cost}
            for product, quantity, cost in lines
        ],
        **extra,
    }


async def placed_order(
    client: httpx.AsyncClient, world: dict[str, Any], *lines: tuple[str, int, str]
) -> dict[str, Any]:
    created = await client.post(ORDERS, json=order_body(world, *lines))
    assert created.status_code == 201, created.text
    placed = await client.post(f"{ORDERS}/{created.json()['id']}/place")
    assert placed.status_code == 200, placed.text
    body: dict[str, Any] = placed.json()
    return body


async def levels(client: httpx.AsyncClient, warehouse_id: int) -> dict[int, dict[str, Any]]:
    """The warehouse's levels by product: quantity and on_order."""
    items = await collect_pages(client, f"{API}/stock", warehouse_id=warehouse_id)
    return {i["product_id"]: {"quantity": i["quantity"], "on_order": i["on_order"]} for i in items}


async def receipts_of(client: httpx.AsyncClient, number: str) -> list[dict[str, Any]]:
    """The ledger's entries referencing the order's number, oldest first."""
    entries = await collect_pages(client, f"{API}/stock/movements", kind="receipt")
    return sorted((e for e in entries if e["reference"] == number), key=lambda e: e["id"])

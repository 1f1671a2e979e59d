"""The stock every sales order test starts from, and the calls they all make."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.models import StockLevel
from tests.helpers import API, create, create_product, receive_stock

ORDERS = f"{API}/sales-orders"


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    """Main holds 10 bolts and 3 nuts, east 4 bolts; a bolt sells at 2.50."""
    main = await create(client, "/warehouses", code="MAIN", name="Main")
    east = await create(client, "/warehouses", code="EAST", name="East")
    bolt = await create_product(client, "BOLT-1", unit_price="2.50")
    nut = await create_product(client, "NUT-1")
    for product, warehouse, quantity in ((bolt, main, 10), (bolt, east, 4), (nut, main, 3)):
        received = await receive_stock(client, product["id"], warehouse["id"], quantity)
        assert received.status_code == 201, received.text
    return {"main": main["id"], "east": east["id"], "bolt": bolt["id"], "nut": nut["id"]}


def line(product_id: int, warehouse_id: int, quantity: int, **extra: Any) -> dict[str, Any]:
    return {"product_id": product_id, "warehouse_id": warehouse_id, "quantity": quantity, **extra}


async def new_order(
    client: httpx.AsyncClient, *lines: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    made = await client.post(ORDERS, json={"lines": list(lines), **extra})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def step(
    client: httpx.AsyncClient, order_id: int, action: str, **body: Any
) -> httpx.Response:
    return await client.post(f"{ORDERS}/{order_id}/{action}", json=body or None)


async def done(
    client: httpx.AsyncClient, order_id: int, action: str, **body: Any
) -> dict[str, Any]:
    """The order after ``action``, which must succeed."""
    answer = await step(client, order_id, action, **body)
    assert answer.status_code == 200, answer.text
    order: dict[str, Any] = answer.json()
    return order


async def level(client: httpx.AsyncClient, product_id: int, warehouse_id: int) -> dict[str, Any]:
    page = await client.get(
        f"{API}/stock", params={"product_id": product_id, "warehouse_id": warehouse_id}
    )
    [item] = page.json()["items"]
    return {k: item[k] for k in ("quantity", "reserved", "available")}


def figures(order: dict[str, Any]) -> list[tuple[int, int, int]]:
    """Each line's (quantity, allocated, shipped)."""
    return [(ln["quantity"], ln["allocated"], ln["shipped"]) for ln in order["lines"]]


async def holds_until(engine: AsyncEngine, product_id: int, warehouse_id: int) -> Any:
    async with engine.connect() as connection:
        return await connection.scalar(
            select(StockLevel.holds_until).where(
                StockLevel.product_id == product_id, StockLevel.warehouse_id == warehouse_id
            )
        )

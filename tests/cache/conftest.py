"""Fixtures for the cache tests: a viewer's client, a small shop, and the SQL each request runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.cache.helpers import StatementLog
from tests.helpers import API, create, create_product


@pytest.fixture
def sql(engine: AsyncEngine) -> Iterator[StatementLog]:
    log = StatementLog()
    event.listen(engine.sync_engine, "before_cursor_execute", log)
    yield log
    event.remove(engine.sync_engine, "before_cursor_execute", log)


@pytest.fixture
async def shop(client: httpx.AsyncClient) -> dict[str, Any]:
    """A category, a supplier, a warehouse and three products (reorder level 5), the first
    with 10 in stock; their ids by name (``products`` lists all three)."""
    category = await create(client, "/categories", name="Tools")
    supplier = await create(client, "/suppliers", name="Acme")
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    products = [
        await create_product(
            client,
            f"C-{n}",
            category_id=category["id"],
            supplier_id=supplier["id"],
            reorder_level=5,
        )
        for n in range(3)
    ]
    receipt = await client.post(
        f"{API}/stock/movements",
        json={
            "product_id": products[0]["id"],
            "warehouse_id": warehouse["id"],
            "kind": "receipt",
            "quantity": 10,
        },
    )
    assert receipt.status_code == 201, receipt.text
    return {
        "category": category["id"],
        "supplier": supplier["id"],
        "warehouse": warehouse["id"],
        "product": products[0]["id"],
        "products": [p["id"] for p in products],
    }

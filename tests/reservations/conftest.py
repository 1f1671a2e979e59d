"""The stock every reservation test starts from: two warehouses, two products."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import API, create, create_product


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    main = await create(client, "/warehouses", code="MAIN", name="Main")
    east = await create(client, "/warehouses", code="EAST", name="East")
    bolt = await create_product(client, "BOLT-1")
    nut = await create_product(client, "NUT-1")
    for product, warehouse, quantity in ((bolt, main, 10), (bolt, east, 4), (nut, main, 3)):
        receipt = await client.post(
            f"{API}/stock/movements",
            json={
                "product_id": product["id"],
                "warehouse_id": warehouse["id"],
                "kind": "receipt",
                "quantity": quantity,
            },
        )
        assert receipt.status_code == 201, receipt.text
    return {"main": main["id"], "east": east["id"], "bolt": bolt["id"], "nut": nut["id"]}

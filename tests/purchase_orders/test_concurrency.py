"""Purchase order numbers under load: 200 orders created at once against a real server with
two worker processes on PostgreSQL get 200 distinct, consecutive numbers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from inventory.config import Settings
from inventory.models import Role
from tests.helpers import collect_pages, create, create_product
from tests.processes import Server, server_environment, serving
from tests.purchase_orders.conftest import ORDERS

pytestmark = [pytest.mark.slow, pytest.mark.backend("postgresql")]

ORDERS_AT_ONCE = 200


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[Server]:
    """`inventory serve --workers 2` on the test database; requests queue rather than being
    shed while the burst lasts (shedding is not what this test is about)."""
    env = server_environment(
        settings,
        INVENTORY_DB_POOL_SIZE="10",
        INVENTORY_MAX_IN_FLIGHT="10",
        INVENTORY_QUEUE_WAIT_SECONDS="120",
    )
    with serving("--no-migrate", "--workers", "2", **env) as running:
        yield running


@pytest.fixture
async def manager(server: Server, accounts: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real server, as a manager, with a connection of its own for every request."""
    limits = httpx.Limits(max_connections=ORDERS_AT_ONCE + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=server.url, headers=accounts[Role.manager].headers, limits=limits, timeout=180
    ) as http:
        yield http


async def test_orders_created_at_once_get_distinct_consecutive_numbers(client, manager):
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    supplier = await create(client, "/suppliers", name="Acme")
    product = await create_product(client, "BOLT-1")
    body = {
        "supplier_id": supplier["id"],
        "warehouse_id": warehouse["id"],
        "lines": [{"product_id": product["id"], "quantity": 1, "unit_cost": "1"}],
    }
    responses = await asyncio.gather(
        *(manager.post(ORDERS, json=body | {"reference": f"r{n}"}) for n in range(ORDERS_AT_ONCE))
    )
    assert Counter(r.status_code for r in responses) == Counter({201: ORDERS_AT_ONCE}), [
        r.text for r in responses if r.status_code != 201
    ][:3]
    numbers = sorted(r.json()["number"] for r in responses)
    assert numbers == [f"PO-{n:06d}" for n in range(1, ORDERS_AT_ONCE + 1)]
    # Each reference got one of them, as stored.
    stored = await collect_pages(client, ORDERS, limit=200)
    assert sorted((o["reference"], o["number"]) for o in stored) == sorted(
        (r.json()["reference"], r.json()["number"]) for r in responses
    )

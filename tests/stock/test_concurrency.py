"""The numbers stay right under load, against a real server.

PostgreSQL runs behind two worker processes; SQLite behind one, as the
embedded deployment would. Requests come from this process, 200 at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from inventory.config import Settings
from inventory.models import Role
from tests.helpers import API, assert_ledger_consistent, create, create_product
from tests.processes import server_environment, serving


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[str]:
    """`inventory serve` on the test database: 2 workers on PostgreSQL, 1 on SQLite."""
    env = server_environment(settings)
    workers = "1" if settings.is_sqlite else "2"
    with serving("--no-migrate", "--workers", workers, **env) as running:
        yield running.url


async def _burst(base: str, token: str, requests: list[tuple[str, dict[str, Any]]]) -> Counter[int]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=120
    ) as http:
        responses = await asyncio.gather(*(http.post(url, json=body) for url, body in requests))
    failures = [r.text for r in responses if r.status_code >= 500]
    assert failures == [], failures[:3]
    return Counter(r.status_code for r in responses)


async def _level(client: httpx.AsyncClient, product_id: int, warehouse_id: int) -> int:
    params = {"product_id": product_id, "warehouse_id": warehouse_id}
    items = (await client.get(f"{API}/stock", params=params)).json()["items"]
    return int(items[0]["quantity"]) if items else 0


async def test_200_concurrent_shipments_against_100_in_stock(server, client, accounts, engine):
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "HOT-1")
    target = {"product_id": product["id"], "warehouse_id": warehouse["id"]}
    receipt = await client.post(
        f"{API}/stock/movements", json=target | {"kind": "receipt", "quantity": 100}
    )
    assert receipt.status_code == 201

    shipment = target | {"kind": "shipment", "quantity": 1}
    statuses = await _burst(
        server, accounts[Role.clerk].token, [(f"{API}/stock/movements", shipment)] * 200
    )
    assert statuses == Counter({201: 100, 409: 100})
    assert await _level(client, product["id"], warehouse["id"]) == 0
    await assert_ledger_consistent(engine)


async def test_opposing_transfers_neither_deadlock_nor_lose_stock(server, client, accounts, engine):
    east = await create(client, "/warehouses", code="EAST", name="East")
    west = await create(client, "/warehouses", code="WEST", name="West")
    product = await create_product(client, "HOT-2")
    for warehouse in (east, west):
        receipt = {
            "product_id": product["id"],
            "warehouse_id": warehouse["id"],
            "kind": "receipt",
            "quantity": 50,
        }
        assert (await client.post(f"{API}/stock/movements", json=receipt)).status_code == 201

    def transfer(source: dict[str, Any], destination: dict[str, Any]) -> dict[str, Any]:
        return {
            "product_id": product["id"],
            "from_warehouse_id": source["id"],
            "to_warehouse_id": destination["id"],
            "quantity": 1,
        }

    requests = [
        (f"{API}/stock/transfers", transfer(east, west) if n % 2 else transfer(west, east))
        for n in range(200)
    ]
    statuses = await _burst(server, accounts[Role.clerk].token, requests)
    assert set(statuses) <= {201, 409}
    assert statuses[201] >= 100  # each side starts with 50 and gains as it loses
    total = await _level(client, product["id"], east["id"]) + await _level(
        client, product["id"], west["id"]
    )
    assert total == 100
    await assert_ledger_consistent(engine)


async def test_50_concurrent_replays_across_workers_make_one_movement(
    server, client, accounts, engine
):
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "HOT-3")
    receipt = {
        "product_id": product["id"],
        "warehouse_id": warehouse["id"],
        "kind": "receipt",
        "quantity": 3,
    }
    token = accounts[Role.clerk].token
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "one-delivery"}
    async with httpx.AsyncClient(
        base_url=server, headers=headers, limits=limits, timeout=120
    ) as http:
        responses = await asyncio.gather(
            *(http.post(f"{API}/stock/movements", json=receipt) for _ in range(50))
        )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses][:3]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert await _level(client, product["id"], warehouse["id"]) == 3
    await assert_ledger_consistent(engine)

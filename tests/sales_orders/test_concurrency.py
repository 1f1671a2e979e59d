"""Sales orders racing for the same stock, against a real server: nothing is allocated twice.

PostgreSQL runs behind two worker processes, SQLite behind one; every request
of a burst is in flight at once, on a connection of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from inventory.config import Settings
from inventory.models import Role
from tests.helpers import API, assert_ledger_consistent, create, create_product, receive_stock
from tests.processes import Server, server_environment, serving
from tests.sales_orders.conftest import ORDERS, figures, holds_until, level, line


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[Server]:
    env = server_environment(settings, INVENTORY_QUEUE_WAIT_SECONDS="60")
    workers = "1" if settings.is_sqlite else "2"
    with serving("--no-migrate", "--workers", workers, **env) as running:
        yield running


@pytest.fixture
async def clerk(server: Server, accounts: Any) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=server.url, headers=accounts[Role.clerk].headers, limits=limits, timeout=60
    ) as http:
        yield http


async def _all_at_once(http: httpx.AsyncClient, urls: list[str]) -> list[dict[str, Any]]:
    answers = await asyncio.gather(*(http.post(url) for url in urls))
    assert [a.status_code for a in answers] == [200] * len(urls), [a.text for a in answers]
    return [a.json() for a in answers]


@pytest.mark.slow
async def test_two_orders_for_80_against_100_allocate_100_then_ship_everything(
    client, clerk, engine
):
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "HOT-SO")
    p, w = product["id"], warehouse["id"]
    assert (await receive_stock(clerk, p, w, 100)).status_code == 201
    orders = [(await clerk.post(ORDERS, json={"lines": [line(p, w, 80)]})).json() for _ in "ab"]

    confirmed = await _all_at_once(clerk, [f"{ORDERS}/{o['id']}/confirm" for o in orders])
    allocated = [o["lines"][0]["allocated"] for o in confirmed]
    assert sum(allocated) == 100
    assert sorted(allocated) == [20, 80]
    assert sum(o["lines"][0]["backordered"] for o in confirmed) == 60
    assert await level(clerk, p, w) == {"quantity": 100, "reserved": 100, "available": 0}

    assert (await receive_stock(clerk, p, w, 60)).status_code == 201
    topped = await _all_at_once(clerk, [f"{ORDERS}/{o['id']}/allocate" for o in orders])
    assert [figures(o) for o in topped] == [[(80, 80, 0)], [(80, 80, 0)]]
    assert await level(clerk, p, w) == {"quantity": 160, "reserved": 160, "available": 0}

    ships = await asyncio.gather(
        *(
            clerk.post(
                f"{ORDERS}/{o['id']}/ship",
                json={"lines": [{"line_id": o["lines"][0]["id"], "quantity": 80}]},
            )
            for o in orders
        )
    )
    assert [s.status_code for s in ships] == [200, 200], [s.text for s in ships]
    assert {s.json()["status"] for s in ships} == {"shipped"}
    assert await level(clerk, p, w) == {"quantity": 0, "reserved": 0, "available": 0}
    assert await holds_until(engine, p, w) is None
    shipments = (
        await clerk.get(f"{API}/stock/movements", params={"kind": "shipment", "product_id": p})
    ).json()["items"]
    assert sorted(m["reference"] for m in shipments) == sorted(o["number"] for o in orders)
    await assert_ledger_consistent(engine)

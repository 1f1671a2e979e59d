"""What the cache does to Redis: never a KEYS or SCAN, and only keys under its own prefix.

fastapi-cache2's Redis backend clears a namespace with ``KEYS`` inside Lua,
which blocks Redis for as long as the keyspace takes to walk. The service is
served here against a redis-server of the test's own, so Redis's
``INFO commandstats`` counts this service's commands and nobody else's.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from inventory.config import Settings
from inventory.main import create_app
from inventory.models import Role
from tests.cache.redis_server import RedisServer, redis_server
from tests.conftest import Account
from tests.helpers import API, create, create_product

pytestmark = pytest.mark.backend("postgresql")

# Redis counts the commands a Lua script calls too, so KEYS inside EVAL shows as KEYS.
SCANS = ("cmdstat_keys", "cmdstat_scan")


def calls(redis: RedisServer) -> dict[str, int]:
    """How many times each command has run on ``redis`` so far."""
    with redis.client() as client:
        stats: dict[str, Any] = client.info("commandstats")
    return {name: int(value["calls"]) for name, value in stats.items()}


@pytest.fixture
async def private(
    settings: Settings, accounts: dict[Role, Account], tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, RedisServer, httpx.AsyncClient]]:
    """The service on the test database and a Redis of its own; an admin's client."""
    with redis_server(tmp_path) as redis:
        own = Settings(
            env="test",
            database_url=settings.database_url,
            redis_url=redis.url,
            redis_key_prefix=f"inventory-keyspace-{uuid.uuid4().hex[:8]}",
            secret_key=settings.secret_key,
        )
        application = create_app(own)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://testserver",
                headers=accounts[Role.admin].headers,
            ) as http:
                yield application, redis, http


async def test_writes_and_clears_never_walk_the_keyspace(private):
    app, redis, http = private
    category = await create(http, "/categories", name="Tools")
    warehouse = await create(http, "/warehouses", code="MAIN", name="Main")
    products = [await create_product(http, f"K-{n}") for n in range(5)]
    reads = [f"{API}/products/{p['id']}" for p in products] + [
        f"{API}/products?limit=50",
        f"{API}/categories",
        f"{API}/stock",
    ]
    before = calls(redis)

    for n in range(20):
        for target in reads:
            assert (await http.get(target)).status_code == 200
        product = products[n % len(products)]
        patched = await http.patch(f"{API}/products/{product['id']}", json={"name": f"v{n}"})
        assert patched.status_code == 200
        renamed = await http.patch(f"{API}/categories/{category['id']}", json={"name": f"c{n}"})
        assert renamed.status_code == 200
        movement = {
            "product_id": product["id"],
            "warehouse_id": warehouse["id"],
            "kind": "receipt",
            "quantity": 1,
        }
        assert (await http.post(f"{API}/stock/movements", json=movement)).status_code == 201
    for target in reads:
        await http.get(target)
    tiers = app.state.cache
    await tiers.clear(namespace="products")
    await tiers.clear()
    await tiers.forget_everything()

    after = calls(redis)
    assert after.get("cmdstat_set", 0) > before.get("cmdstat_set", 0), "nothing was cached"
    assert after.get("cmdstat_incrby", 0) > before.get("cmdstat_incrby", 0), "no invalidation"
    assert {name: after.get(name, 0) for name in SCANS} == {
        name: before.get(name, 0) for name in SCANS
    }


async def test_a_cleared_namespace_misses_and_the_others_still_hit(private):
    app, redis, http = private
    product = await create_product(http, "K-1")
    await create(http, "/categories", name="Tools")
    targets = {"product": f"{API}/products/{product['id']}", "categories": f"{API}/categories"}
    for target in targets.values():
        await http.get(target)
        assert (await http.get(target)).headers["x-cache"] == "HIT"
    before = calls(redis)

    await app.state.cache.clear(namespace="products")

    assert (await http.get(targets["product"])).headers["x-cache"] == "MISS"
    assert (await http.get(targets["categories"])).headers["x-cache"] == "HIT"
    after = calls(redis)
    assert {name: after.get(name, 0) for name in SCANS} == {
        name: before.get(name, 0) for name in SCANS
    }


async def test_every_key_the_service_writes_is_under_its_prefix(private):
    app, redis, http = private
    prefix = app.state.settings.redis_key_prefix
    product = await create_product(http, "K-1")
    warehouse = await create(http, "/warehouses", code="MAIN", name="Main")
    movement = {
        "product_id": product["id"],
        "warehouse_id": warehouse["id"],
        "kind": "receipt",
        "quantity": 1,
    }
    assert (await http.post(f"{API}/stock/movements", json=movement)).status_code == 201
    for target in (f"{API}/products/{product['id']}", f"{API}/products", f"{API}/stock"):
        await http.get(target)
    await http.post(f"{API}/auth/token", data={"username": "nobody@example.com", "password": "x"})

    with redis.client() as client:
        keys = [key.decode() for key in client.scan_iter(count=1000)]
    assert any(key.startswith(f"{prefix}:cache:") for key in keys), keys
    assert [key for key in keys if not key.startswith(f"{prefix}:")] == []

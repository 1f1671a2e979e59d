"""Several processes on one PostgreSQL and one Redis: each sees the others' writes at once.

Two real ``inventory serve`` processes, A and B, share the test database and
Redis (under this run's key prefix); B keeps a cached copy of what A changes,
so a missed or late invalidation would show as a stale read through B. The
CLI is a third process that writes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inventory.config import Settings
from inventory.models import Role
from tests.helpers import API, create_product
from tests.processes import run, server_environment, serving

pytestmark = pytest.mark.backend("postgresql")


@pytest.fixture(scope="module")
def pair(settings: Settings) -> Iterator[tuple[str, str]]:
    """The base URLs of two single-worker servers, A and B."""
    env = server_environment(settings)
    with serving("--no-migrate", **env) as a, serving("--no-migrate", **env) as b:
        yield a.url, b.url


async def test_a_served_process_reaches_redis_and_answers_from_its_cache(pair, client, accounts):
    """What the others rest on: under ``inventory serve`` the cache's Redis link comes up."""
    product = await create_product(client, "UP-1")
    path = f"{API}/products/{product['id']}"
    for base in pair:
        async with httpx.AsyncClient(base_url=base, headers=accounts[Role.viewer].headers) as http:
            deadline = time.monotonic() + 5
            while (ready := (await http.get("/ready")).json())["checks"].get("redis") != "ok":
                assert time.monotonic() < deadline, ready
                await asyncio.sleep(0.1)
            assert ready == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}
            await http.get(path)
            assert (await http.get(path)).headers["x-cache"] == "HIT"


async def test_both_processes_give_a_product_the_same_version_etag(pair, client, accounts):
    """A tag one process gave is good with the other (fastapi-cache2's own differs per process)."""
    product = await create_product(client, "TAG-1")
    path = f"{API}/products/{product['id']}"
    headers = accounts[Role.viewer].headers
    a, b = pair
    async with (
        httpx.AsyncClient(base_url=a, headers=headers) as via_a,
        httpx.AsyncClient(base_url=b, headers=headers) as via_b,
    ):
        tags = set()
        for http in (via_a, via_b, via_a, via_b):
            answer = await http.get(path)
            assert answer.status_code == 200
            tags.add(answer.headers["etag"])
        # B's tag must also be the one it serves from its cache. On a loaded machine a
        # Redis call slower than its 0.5 s timeout makes B distrust its tier for a
        # moment (by design): ask again until it is back.
        deadline = time.monotonic() + 5
        while answer.headers["x-cache"] != "HIT":
            assert time.monotonic() < deadline, "B never served the product from its cache"
            await asyncio.sleep(0.1)
            answer = await via_b.get(path)
            tags.add(answer.headers["etag"])
        assert tags == {'"1"'}

        patched = await client.patch(path, json={"name": "Changed"})
        assert patched.headers["etag"] == '"2"'
        fresh = await via_b.get(path, headers={"If-None-Match": '"1"'})
        assert (fresh.status_code, fresh.headers["etag"]) == (200, '"2"')
        assert fresh.json()["name"] == "Changed"
        for http in (via_a, via_b):
            cached = await http.get(path, headers={"If-None-Match": '"2"'})
            assert (cached.status_code, cached.headers["etag"]) == (304, '"2"')


async def test_a_product_updated_through_a_is_read_through_b_200_times(pair, client, accounts):
    product = await create_product(client, "RAW-1")
    path = f"{API}/products/{product['id']}"
    a, b = pair
    headers = accounts[Role.manager].headers
    stale, hits = [], 0
    async with (
        httpx.AsyncClient(base_url=a, headers=headers) as via_a,
        httpx.AsyncClient(base_url=b, headers=headers) as via_b,
    ):
        await via_b.get(path)
        assert (await via_b.get(path)).headers["x-cache"] == "HIT"
        for n in range(200):
            patched = await via_a.patch(path, json={"name": f"v{n}"})
            assert patched.status_code == 200, patched.text
            expected = (patched.json()["version"], f"v{n}")
            read = await via_b.get(path)
            assert read.status_code == 200
            if (read.json()["version"], read.json()["name"]) != expected:
                stale.append((n, read.json()["version"], read.headers["x-cache"]))
            listed = await via_b.get(f"{API}/products", params={"q": "RAW-1"})
            if listed.json()["items"][0]["name"] != f"v{n}":
                stale.append((n, "list", listed.headers["x-cache"]))
            # B cached the new version, so the next write must reach that copy.
            again = await via_b.get(path)
            hits += again.headers["x-cache"] == "HIT"
    assert stale == []
    assert hits == 200


HEADER = "sku,name,description,category,supplier,unit_price,reorder_level,is_active\n"


async def test_a_cli_import_is_seen_by_a_servers_next_read(
    pair, client, accounts, settings, tmp_path: Path
):
    product = await create_product(client, "CLI-1")
    path = f"{API}/products/{product['id']}"
    _, b = pair
    reads = [path, f"{API}/products?limit=50", f"{API}/categories"]
    async with httpx.AsyncClient(base_url=b, headers=accounts[Role.viewer].headers) as via_b:
        for target in reads:
            await via_b.get(target)
            assert (await via_b.get(target)).headers["x-cache"] == "HIT"

        csv = tmp_path / "products.csv"
        csv.write_text(
            HEADER
            + "CLI-1,Renamed by the CLI,,,,1.00,0,true\n"
            + "CLI-2,Made by the CLI,,Garden,,2.00,0,true\n"
        )
        env = server_environment(settings)
        env.pop("INVENTORY_DATABASE_URL")
        result = await asyncio.to_thread(
            run, "import", "products", str(csv), database_url=settings.database_url, **env
        )
        assert result.returncode == 0, result.stderr

        assert (await via_b.get(path)).json()["name"] == "Renamed by the CLI"
        listed = (await via_b.get(f"{API}/products", params={"limit": 50})).json()["items"]
        assert {p["sku"] for p in listed} == {"CLI-1", "CLI-2"}
        categories = (await via_b.get(f"{API}/categories")).json()["items"]
        assert [c["name"] for c in categories] == ["Garden"]

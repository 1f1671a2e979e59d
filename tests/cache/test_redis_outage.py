"""Redis stopped in the middle of a run of reads: no errors, no waiting, and the cache back after.

The test runs a redis-server of its own and a real ``inventory serve`` on it
and the test database, stops Redis while a reader keeps asking for a
product, writes during the outage, and starts Redis again on the same port
(empty, as after a crash): reads answer 200 quickly throughout, ``/ready``
says Redis is degraded, and the process uses its cache again without a
restart, showing the write made while Redis was away.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from inventory.cache.store import CacheTiers
from inventory.main import create_app
from inventory.models import Role
from inventory.pubsub import LEASE_SECONDS, PubSubListener
from tests.cache.redis_server import redis_server
from tests.helpers import API, create_product
from tests.processes import server_environment, serving

pytestmark = pytest.mark.backend("postgresql")

SLOWEST_READ_SECONDS = 1.0  # a guard against hanging on a dead Redis, not a benchmark


async def _redis_check(http: httpx.AsyncClient) -> tuple[int, str | None]:
    ready = await http.get("/ready")
    return ready.status_code, ready.json().get("checks", {}).get("redis")


async def _wait_for_redis_check(
    http: httpx.AsyncClient, expected: str, within_seconds: float
) -> None:
    """Until ``/ready`` answers 200 with ``checks.redis == expected``."""
    deadline = time.monotonic() + within_seconds
    while (check := await _redis_check(http)) != (200, expected):
        assert time.monotonic() < deadline, f"/ready still says {check}"
        await asyncio.sleep(0.1)


async def test_reads_survive_redis_stopping_and_the_cache_returns_with_it(
    settings, client, accounts, tmp_path: Path
):
    product = await create_product(client, "OUT-1")
    path = f"{API}/products/{product['id']}"
    headers = accounts[Role.manager].headers
    with redis_server(tmp_path) as redis:
        env = server_environment(
            settings,
            INVENTORY_REDIS_URL=redis.url,
            INVENTORY_REDIS_KEY_PREFIX=f"inventory-outage-{uuid.uuid4().hex[:8]}",
        )
        with serving("--no-migrate", **env) as server:
            async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
                await _wait_for_redis_check(http, "ok", within_seconds=5)
                await http.get(path)
                assert (await http.get(path)).headers["x-cache"] == "HIT"

                reads: list[tuple[float, int, str]] = []
                stop = asyncio.Event()

                async def reader() -> None:
                    async with httpx.AsyncClient(
                        base_url=server.url, headers=headers, timeout=30
                    ) as own:
                        while not stop.is_set():
                            started = time.monotonic()
                            answer = await own.get(path)
                            elapsed = time.monotonic() - started
                            reads.append((elapsed, answer.status_code, answer.headers["x-cache"]))
                            await asyncio.sleep(0.01)

                reading = asyncio.create_task(reader())
                try:
                    await asyncio.sleep(0.3)
                    before_outage = len(reads)
                    await asyncio.to_thread(redis.stop, signal.SIGTERM)

                    await _wait_for_redis_check(http, "degraded", within_seconds=10)

                    patched = await http.patch(path, json={"name": "Written in the outage"})
                    assert patched.status_code == 200, patched.text
                    during = await http.get(path)
                    assert during.json()["name"] == "Written in the outage"
                    await asyncio.sleep(1.0)
                    outage_reads = reads[before_outage:]

                    await asyncio.to_thread(redis.start)
                    deadline = time.monotonic() + 15
                    while (await http.get(path)).headers["x-cache"] != "HIT":
                        assert time.monotonic() < deadline, "the cache was not used again"
                        await asyncio.sleep(0.1)
                    await _wait_for_redis_check(http, "ok", within_seconds=10)
                finally:
                    stop.set()
                    await reading

                after = await http.get(path)
                assert after.headers["x-cache"] == "HIT"
                assert after.json()["name"] == "Written in the outage"
                assert after.json()["version"] == patched.json()["version"]

    assert [status for _, status, _ in reads if status != 200] == []
    slowest = max(elapsed for elapsed, _, _ in reads)
    assert slowest < SLOWEST_READ_SECONDS, f"a read took {slowest:.2f}s"
    assert len(outage_reads) >= 10, "the reader should have kept reading through the outage"


async def test_after_redis_restarts_empty_a_write_through_one_process_reaches_the_other(
    settings, client, accounts, tmp_path: Path
):
    """Redis lost its data (generation counters included); processes A and B did not."""
    product = await create_product(client, "RST-1")
    path = f"{API}/products/{product['id']}"
    headers = accounts[Role.manager].headers
    with redis_server(tmp_path) as redis:
        env = server_environment(
            settings,
            INVENTORY_REDIS_URL=redis.url,
            INVENTORY_REDIS_KEY_PREFIX=f"inventory-restart-{uuid.uuid4().hex[:8]}",
        )
        with serving("--no-migrate", **env) as a, serving("--no-migrate", **env) as b:
            async with (
                httpx.AsyncClient(base_url=a.url, headers=headers, timeout=30) as via_a,
                httpx.AsyncClient(base_url=b.url, headers=headers, timeout=30) as via_b,
            ):
                for http in (via_a, via_b):
                    await _wait_for_redis_check(http, "ok", within_seconds=5)
                # Writes while Redis is up take both processes past Redis's fresh counters.
                for n in range(3):
                    patched = await via_a.patch(path, json={"name": f"before {n}"})
                    assert patched.status_code == 200, patched.text

                await asyncio.to_thread(redis.stop, signal.SIGTERM)
                for http in (via_a, via_b):
                    await _wait_for_redis_check(http, "degraded", within_seconds=10)
                await asyncio.to_thread(redis.start)
                for http in (via_a, via_b):
                    await _wait_for_redis_check(http, "ok", within_seconds=15)

                stale = []
                for n in range(5):
                    await via_b.get(path)
                    assert (await via_b.get(path)).headers["x-cache"] == "HIT"
                    patched = await via_a.patch(path, json={"name": f"after {n}"})
                    assert patched.status_code == 200, patched.text
                    read = await via_b.get(path)
                    if read.json()["version"] != patched.json()["version"]:
                        stale.append((n, read.json()["version"], patched.json()["version"]))
                assert stale == []


async def test_a_hung_redis_costs_at_most_one_timeout_then_reads_skip_it(
    settings, client, accounts, tmp_path: Path
):
    """Redis frozen (SIGSTOP): connections open, nothing answers. Reads must not keep waiting."""
    product = await create_product(client, "HUNG-1")
    headers = accounts[Role.viewer].headers
    with redis_server(tmp_path) as redis:
        env = server_environment(
            settings,
            INVENTORY_REDIS_URL=redis.url,
            INVENTORY_REDIS_KEY_PREFIX=f"inventory-hung-{uuid.uuid4().hex[:8]}",
        )
        with serving("--no-migrate", **env) as server:
            async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
                await _wait_for_redis_check(http, "ok", within_seconds=5)
                assert redis.process is not None
                redis.process.send_signal(signal.SIGSTOP)
                try:
                    timings = []
                    # Each a different entry, so each would ask Redis if Redis were trusted.
                    for limit in range(1, 21):
                        started = time.monotonic()
                        answer = await http.get(f"{API}/products", params={"limit": limit})
                        timings.append(time.monotonic() - started)
                        assert answer.status_code == 200
                        assert [p["id"] for p in answer.json()["items"]] == [product["id"]]
                    await _wait_for_redis_check(http, "degraded", within_seconds=10)
                finally:
                    redis.process.send_signal(signal.SIGCONT)
                await _wait_for_redis_check(http, "ok", within_seconds=15)
    slow = [t for t in timings if t > 0.3]
    assert len(slow) <= 2, f"reads kept waiting on the frozen Redis: {timings}"
    assert max(timings) < 2 * SLOWEST_READ_SECONDS, timings


async def test_a_frozen_redis_stops_other_processes_trusting_their_tier(settings, tmp_path: Path):
    """No reset arrives from a frozen Redis: trust must lapse on its own, within the lease."""
    with redis_server(tmp_path) as redis:
        shared = settings.model_copy(
            update={"redis_url": redis.url, "redis_key_prefix": f"lease-{uuid.uuid4().hex[:8]}"}
        )
        listeners = [PubSubListener(redis.url), PubSubListener(redis.url)]
        here, there = (CacheTiers(shared, listener) for listener in listeners)
        try:
            for tiers, listener in zip((here, there), listeners, strict=True):
                listener.start()
                await listener.wait_connected(within=1.0)
                assert tiers.usable
            assert redis.process is not None
            redis.process.send_signal(signal.SIGSTOP)
            try:
                await here.invalidate(["products"])  # its message never goes out
                started = time.monotonic()
                while there.usable:
                    assert time.monotonic() - started < LEASE_SECONDS + 1, "still trusted"
                    await asyncio.sleep(0.05)
            finally:
                redis.process.send_signal(signal.SIGCONT)
            assert await listeners[1].wait_connected(within=10)
        finally:
            # Listeners first: one catching up still uses its cache's client.
            for tiers, listener in zip((here, there), listeners, strict=True):
                await listener.close()
                await tiers.close()


async def test_answers_larger_than_the_process_tier_are_still_served(settings, accounts):
    app = create_app(settings.model_copy(update={"cache_local_bytes": 0}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = accounts[Role.viewer].headers
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as http:
            for _ in range(2):
                assert (await http.get(f"{API}/categories")).status_code == 200

"""Liveness and readiness, including a database that is down or hangs."""

from __future__ import annotations

import asyncio

import httpx

from inventory.config import Settings
from inventory.main import create_app
from tests.helpers import assert_problem


async def test_health_and_ready(client, settings):
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    checks = {"database": "ok"} | ({"redis": "ok"} if settings.redis_url else {})
    assert ready.json() == {"status": "ready", "checks": checks}


async def _ready_status(database_url: str) -> httpx.Response:
    app = create_app(Settings(database_url=database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            # The guard only keeps a regression from hanging the suite.
            async with asyncio.timeout(5):
                assert (await http.get("/health")).status_code == 200
                return await http.get("/ready")


async def test_ready_is_503_when_database_hangs(silent_port):
    response = await _ready_status(f"postgresql+asyncpg://postgres@127.0.0.1:{silent_port}/x")
    body = assert_problem(response, 503)
    assert body["checks"] == {"database": "unreachable"}


async def test_ready_is_503_when_database_refuses():
    response = await _ready_status("postgresql+asyncpg://postgres@127.0.0.1:1/x")
    assert_problem(response, 503)

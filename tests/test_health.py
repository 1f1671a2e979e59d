"""Liveness and readiness: only the database decides; Redis and the broker are reported."""

from __future__ import annotations

import asyncio

import httpx

from inventory.config import Settings
from inventory.main import create_app
from tests.helpers import assert_problem

REFUSING_BROKER = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens on port 1


async def test_health_and_ready(client, settings):
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    checks = {"database": "ok"} | ({"redis": "ok"} if settings.redis_url else {})
    assert ready.json() == {"status": "ready", "checks": checks}


async def _ready_status(database_url: str, broker_url: str | None = None) -> httpx.Response:
    app = create_app(Settings(database_url=database_url, broker_url=broker_url))
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
    assert body["checks"] == {"database": "unavailable"}
    assert body["type"].endswith(":not-ready")


async def test_ready_is_503_when_database_refuses():
    response = await _ready_status("postgresql+asyncpg://postgres@127.0.0.1:1/x")
    assert_problem(response, 503)


async def test_a_broker_that_is_down_is_reported_but_the_service_stays_ready(database_url):
    response = await _ready_status(database_url, broker_url=REFUSING_BROKER)
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "broker": "unavailable"},
    }


async def test_database_down_is_503_whatever_the_broker_says():
    response = await _ready_status(
        "postgresql+asyncpg://postgres@127.0.0.1:1/x", broker_url=REFUSING_BROKER
    )
    body = assert_problem(response, 503)
    assert body["checks"] == {"database": "unavailable", "broker": "unavailable"}
    assert body["detail"] == "The database is not reachable."

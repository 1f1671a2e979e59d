"""Handing a job over: a broker that hangs costs an upload a quick 503, and records nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from inventory.config import Settings
from inventory.main import create_app
from inventory.models import ImportJob, Role
from tests.conftest import Account
from tests.helpers import API, assert_problem

HEADER = "sku,name,description,category,supplier,unit_price,reorder_level,is_active\n"


@pytest.fixture(params=["amqp://guest:guest@127.0.0.1:{port}//", "redis://127.0.0.1:{port}/0"])
async def hung_broker_app(
    request: pytest.FixtureRequest, settings: Settings, silent_port: int
) -> AsyncIterator[FastAPI]:
    """The service, with a broker that accepts connections and never answers."""
    broker = request.param.format(port=silent_port)
    app = create_app(settings.model_copy(update={"broker_url": broker}))
    async with app.router.lifespan_context(app):
        yield app


async def test_a_hung_broker_refuses_the_upload_within_two_seconds(
    hung_broker_app, accounts: dict[Role, Account], engine
):
    transport = httpx.ASGITransport(app=hung_broker_app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers=accounts[Role.manager].headers,
    ) as api:
        started = time.monotonic()
        refused = await api.post(
            f"{API}/imports/products",
            files={"file": ("p.csv", (HEADER + "H-1,Hung,,,,1,0,true\n").encode(), "text/csv")},
        )
        assert time.monotonic() - started < 2.0
        assert assert_problem(refused, 503)["type"].endswith("broker-unavailable")
        assert refused.headers["retry-after"] == "5"
        async with engine.connect() as connection:
            assert await connection.scalar(select(func.count()).select_from(ImportJob)) == 0

        started = time.monotonic()
        ready = await api.get("/ready")
        assert time.monotonic() - started < 2.0
        # Reads and writes still answer: a hung broker does not take the instance out.
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "degraded"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["broker"] == "unavailable"

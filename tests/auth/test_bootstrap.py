"""The first admin, created at start from INVENTORY_ADMIN_EMAIL / INVENTORY_ADMIN_PASSWORD."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from inventory import migrations
from inventory.config import Settings
from inventory.db import create_engine
from inventory.main import create_app
from tests.helpers import API, login


@pytest.fixture
async def fresh_settings(databases, settings: Settings) -> Settings:
    url = await databases.create()
    engine = create_engine(Settings(database_url=url))
    await migrations.upgrade(engine)
    await engine.dispose()
    return settings.model_copy(update={"database_url": url})


async def _started(app: FastAPI) -> None:
    async with app.router.lifespan_context(app):
        pass


async def test_first_start_creates_the_admin_once_even_with_several_workers(fresh_settings):
    settings = fresh_settings.model_copy(
        update={"admin_email": "Root@Example.com", "admin_password": SecretStr("root-password-1")}
    )
    # Several workers starting at once: one admin, no failure.
    await asyncio.gather(*(_started(create_app(settings)) for _ in range(4)))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            token = (await login(http, "root@example.com", "root-password-1")).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            users = (await http.get(f"{API}/users", headers=headers)).json()["items"]
    assert [(u["email"], u["role"]) for u in users] == [("root@example.com", "admin")]


async def test_invalid_bootstrap_credentials_stop_start_without_echoing_them(fresh_settings):
    settings = fresh_settings.model_copy(
        update={"admin_email": "root@example.com", "admin_password": SecretStr("tiny-pw")}
    )
    with pytest.raises(RuntimeError) as refused:
        await _started(create_app(settings))
    message = str(refused.value)
    assert "INVENTORY_ADMIN_PASSWORD" in message
    assert "tiny-pw" not in message

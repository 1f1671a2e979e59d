"""Fixtures of the live-update tests (subscription, WebSocket, SSE): a real server, stock."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from inventory.config import Settings
from tests.helpers import create, create_product
from tests.processes import server_environment, serving


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[str]:
    """A real ``inventory serve`` on the tests' database and Redis, for this module."""
    with serving("--no-migrate", **server_environment(settings)) as running:
        yield running.url


@pytest.fixture
async def stocked(client: httpx.AsyncClient) -> dict[str, int]:
    """Two warehouses, a watched product and another one."""
    east = await create(client, "/warehouses", code="EAST", name="East")
    west = await create(client, "/warehouses", code="WEST", name="West")
    watched = await create_product(client, "LIVE-1")
    other = await create_product(client, "LIVE-2")
    return {
        "product": watched["id"],
        "other": other["id"],
        "east": east["id"],
        "west": west["id"],
    }

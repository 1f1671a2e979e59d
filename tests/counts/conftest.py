"""The catalogue every count test starts from."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import create, create_product


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    main = await create(client, "/warehouses", code="MAIN", name="Main")
    east = await create(client, "/warehouses", code="EAST", name="East")
    tools = await create(client, "/categories", name="Tools")
    bolt = await create_product(client, "BOLT-1", category_id=tools["id"])
    nut = await create_product(client, "NUT-1", category_id=tools["id"])
    glue = await create_product(client, "GLUE-1")
    return {
        "main": main["id"],
        "east": east["id"],
        "tools": tools["id"],
        "bolt": bolt["id"],
        "nut": nut["id"],
        "glue": glue["id"],
    }

"""``stockChanged`` over graphql-transport-ws, against real ``inventory serve`` processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import ClientConnection, connect

from inventory.models import Role
from tests.helpers import API
from tests.processes import server_environment, serving

SUBSCRIPTION = """
subscription($productId: ID, $warehouseId: ID) {
  stockChanged(productId: $productId, warehouseId: $warehouseId) {
    productId warehouseId quantity movementId
  }
}
"""


class Operation:
    """One subscription on a graphql-transport-ws connection."""

    def __init__(self, socket: ClientConnection, operation_id: str) -> None:
        self.socket = socket
        self.id = operation_id

    async def receive(self, within: float = 5.0) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.socket.recv(), within))
            if message.get("type") == "ping":
                await self.socket.send(json.dumps({"type": "pong"}))
                continue
            assert message.get("id") == self.id, message
            return dict(message)

    async def change(self, within: float = 5.0) -> dict[str, Any]:
        message = await self.receive(within)
        assert message["type"] == "next", message
        change: dict[str, Any] = message["payload"]["data"]["stockChanged"]
        return change


@asynccontextmanager
async def subscribed(
    base: str,
    query: str = SUBSCRIPTION,
    *,
    init: dict[str, Any] | None = None,
    url_suffix: str = "",
    **variables: Any,
) -> AsyncIterator[Operation]:
    url = base.replace("http://", "ws://") + "/graphql" + url_suffix
    async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": init or {}}))
        ack = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert ack["type"] == "connection_ack", ack
        payload = {"query": query, "variables": variables}
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        yield Operation(socket, "1")


async def receipt(http: httpx.AsyncClient, product: int, warehouse: int, quantity: int) -> int:
    response = await http.post(
        f"{API}/stock/movements",
        json={
            "product_id": product,
            "warehouse_id": warehouse,
            "kind": "receipt",
            "quantity": quantity,
        },
    )
    assert response.status_code == 201, response.text
    movement_id: int = response.json()["id"]
    return movement_id


async def synced(
    operation: Operation, http: httpx.AsyncClient, product: int, warehouse: int
) -> int:
    """Receive 1-unit receipts until the subscription is live; return the level reached.

    A subscription has no "listening now" message, so send changes until one
    arrives, then read up to the last one sent.
    """
    sent: list[int] = []
    for _ in range(50):
        sent.append(await receipt(http, product, warehouse, 1))
        try:
            change = await operation.change(within=0.2)
            break
        except TimeoutError:
            continue
    else:
        pytest.fail("the subscription never received a change")
    while int(change["movementId"]) != sent[-1]:
        change = await operation.change()
    return int(change["quantity"])


async def test_stock_changed_streams_the_watched_product_only(server, accounts, stocked):
    product, east, west = stocked["product"], stocked["east"], stocked["west"]
    viewer = accounts[Role.viewer]
    clerk = httpx.AsyncClient(base_url=server, headers=accounts[Role.clerk].headers, timeout=30)
    init = {"Authorization": f"Bearer {viewer.token}"}
    async with clerk, subscribed(server, init=init, productId=str(product)) as operation:
        level = await synced(operation, clerk, product, east)

        await receipt(clerk, stocked["other"], east, 4)  # filtered out
        refused = await clerk.post(
            f"{API}/stock/movements",
            json={"product_id": product, "warehouse_id": east, "kind": "shipment", "quantity": 999},
        )
        assert refused.status_code == 409  # nothing committed, nothing pushed
        movement = await receipt(clerk, product, east, 10)
        assert await operation.change() == {
            "productId": str(product),
            "warehouseId": str(east),
            "quantity": level + 10,
            "movementId": str(movement),
        }

        transfer = await clerk.post(
            f"{API}/stock/transfers",
            json={
                "product_id": product,
                "from_warehouse_id": east,
                "to_warehouse_id": west,
                "quantity": 4,
            },
        )
        assert transfer.status_code == 201
        legs = {m["warehouse_id"]: str(m["id"]) for m in transfer.json()["movements"]}
        assert [await operation.change(), await operation.change()] == [
            {
                "productId": str(product),
                "warehouseId": str(east),
                "quantity": level + 6,
                "movementId": legs[east],
            },
            {
                "productId": str(product),
                "warehouseId": str(west),
                "quantity": 4,
                "movementId": legs[west],
            },
        ]


async def test_warehouse_filter_and_token_in_the_url(server, accounts, stocked):
    product, east, west = stocked["product"], stocked["east"], stocked["west"]
    token = accounts[Role.viewer].token
    clerk = httpx.AsyncClient(base_url=server, headers=accounts[Role.clerk].headers, timeout=30)
    suffix = f"?token={token}"
    async with clerk, subscribed(server, url_suffix=suffix, warehouseId=str(west)) as operation:
        await synced(operation, clerk, product, west)
        await receipt(clerk, product, east, 3)
        movement = await receipt(clerk, stocked["other"], west, 2)
        change = await operation.change()
        assert (change["warehouseId"], change["movementId"]) == (str(west), str(movement))


@pytest.mark.parametrize(
    ("init", "message"),
    [
        ({}, "Sign in first: this endpoint needs a bearer token."),
        ({"Authorization": "Bearer not-a-token"}, "The token is invalid or has expired."),
    ],
    ids=["no token", "bad token"],
)
async def test_a_subscription_without_a_valid_token_is_refused_as_over_http(
    server, accounts, init, message
):
    """An ``error`` message with the code and words GraphQL over HTTP (and REST) use."""
    async with subscribed(server, init=init) as operation:
        refusal = await operation.receive()
    assert refusal["type"] == "error", refusal
    assert [(e["message"], e["extensions"]["code"]) for e in refusal["payload"]] == [
        (message, "UNAUTHENTICATED")
    ]


async def test_a_subscription_ends_when_its_token_expires(server, settings, accounts):
    soon = datetime.now(UTC) + timedelta(seconds=2)
    claims = {"sub": str(accounts[Role.viewer].id), "iat": datetime.now(UTC), "exp": soon}
    token = jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm="HS256")
    async with subscribed(server, init={"Authorization": f"Bearer {token}"}) as operation:
        message = await operation.receive(within=15)
    assert message["type"] == "next", message
    assert message["payload"]["data"] is None
    assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["UNAUTHENTICATED"]
    assert datetime.now(UTC) >= soon


async def test_queries_and_mutations_go_over_http_not_the_websocket(server, accounts):
    init = {"Authorization": f"Bearer {accounts[Role.admin].token}"}
    async with subscribed(server, "{ me { email } }", init=init) as operation:
        message = await operation.receive()
    assert message["type"] in {"next", "error"}, message
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert [e["extensions"]["code"] for e in errors] == ["BAD_REQUEST"]


@pytest.mark.backend("postgresql")
async def test_a_change_made_on_another_server_arrives(server, settings, accounts, stocked):
    """Two processes sharing PostgreSQL and Redis: write on one, hear it on the other."""
    product, east = stocked["product"], stocked["east"]
    init = {"Authorization": f"Bearer {accounts[Role.viewer].token}"}
    with serving("--no-migrate", **server_environment(settings)) as other:
        clerk = httpx.AsyncClient(
            base_url=other.url, headers=accounts[Role.clerk].headers, timeout=30
        )
        async with clerk, subscribed(server, init=init, productId=str(product)) as operation:
            level = await synced(operation, clerk, product, east)
            movement = await receipt(clerk, product, east, 5)
            assert await operation.change() == {
                "productId": str(product),
                "warehouseId": str(east),
                "quantity": level + 5,
                "movementId": str(movement),
            }

"""One token, one outcome, on every transport that signs a caller in.

A token (valid, expired, tampered with, of a deactivated user, of a demoted
user from before and after the demotion) is tried over REST, the stock
WebSocket, the stock event stream, GraphQL over HTTP and a GraphQL
subscription (graphql-transport-ws), against a served app (uvicorn, in this
process). Each transport is asked for something that needs a clerk, and the
token's user is a clerk (or was): every transport must let it through, or
refuse it as the same class (unauthenticated or forbidden) with the same words.

The live feeds are open to viewers, the lowest role, so no demotion could
refuse them: here they are made to need a clerk, by raising the role their
requirements hold (the same attribute the role matrix reads), so a demoted
clerk is refused the same way everywhere.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
import jwt
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from graphql_schema.subscriptions import StockWatchers
from inventory import security
from inventory.config import Settings
from inventory.deps import RoleRequirement, SocketRoleRequirement
from inventory.main import create_app
from inventory.models import Role
from inventory.users import service as users
from inventory.users.schemas import UserCreate, UserUpdate
from tests.conftest import Account
from tests.helpers import API

SOCKET = "/api/v1/ws/stock"
EVENTS = f"{API}/stock/events"
LIVE_ROUTES = {SOCKET, EVENTS}
RECEIPT = """
mutation($p: ID!, $w: ID!) {
  recordMovement(input: {productId: $p, warehouseId: $w, kind: RECEIPT, quantity: 1}) {
    __typename
  }
}
"""
SUBSCRIPTION = "subscription { stockChanged { movementId } }"
BAD_TOKEN = "The token is invalid or has expired."

Kind = Literal["accepted", "unauthenticated", "forbidden", "closed 1008"]


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    message: str | None = None

    def agrees_with(self, other: Outcome) -> bool:
        """Same class and words; a WebSocket closes with 1008 for either class, with the words."""
        if self.kind == "closed 1008":
            return other.kind in ("unauthenticated", "forbidden") and self.message == other.message
        return self == other


ACCEPTED = Outcome("accepted")
EXPECTED = {
    "valid": ACCEPTED,
    "expired": Outcome("unauthenticated", BAD_TOKEN),
    "tampered": Outcome("unauthenticated", BAD_TOKEN),
    "deactivated user": Outcome("unauthenticated", BAD_TOKEN),
    # Issued before the demotion: refused like any token issued before a role change.
    "demoted user": Outcome("unauthenticated", BAD_TOKEN),
    "demoted user, signed in again": Outcome("forbidden", "This needs the clerk role or higher."),
}


def _live_requirements(app: FastAPI) -> list[RoleRequirement | SocketRoleRequirement]:
    """The role requirements of the stock WebSocket and event stream."""
    found: list[RoleRequirement | SocketRoleRequirement] = []
    for context in iter_route_contexts(app.routes):
        if str(context.path) in LIVE_ROUTES and context.dependant is not None:
            for dependency in context.dependant.dependencies:
                if isinstance(dependency.call, RoleRequirement | SocketRoleRequirement):
                    found.append(dependency.call)
    return found


@pytest.fixture
async def served(
    settings: Settings, accounts: dict[Role, Account], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """The app served by uvicorn in this process, its live feeds needing a clerk."""
    prefix = f"{settings.redis_key_prefix}:{uuid.uuid4().hex[:8]}"
    app = create_app(settings.model_copy(update={"redis_key_prefix": prefix}))
    requirements = _live_requirements(app)
    assert len(requirements) == 2, requirements
    for requirement in requirements:
        monkeypatch.setattr(requirement, "role", Role.clerk)
    monkeypatch.setattr(StockWatchers, "role", Role.clerk)
    # log_config=None: leave this process's logging as the other tests expect it.
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_config=None)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the server did not start"
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 15)


@pytest.fixture
async def stock(client: httpx.AsyncClient) -> dict[str, int]:
    warehouse = (await client.post(f"{API}/warehouses", json={"code": "W", "name": "W"})).json()
    product = (
        await client.post(
            f"{API}/products", json={"sku": "SAME-1", "name": "Same", "unit_price": "1.00"}
        )
    ).json()
    return {"product": product["id"], "warehouse": warehouse["id"]}


@pytest.fixture
async def tokens(app: FastAPI, settings: Settings, accounts: dict[Role, Account]) -> dict[str, str]:
    """Each kind of token, all of a clerk (or of one who was)."""
    clerk = accounts[Role.clerk]
    now = datetime.now(UTC)
    expired = jwt.encode(
        {"sub": str(clerk.id), "iat": now - timedelta(hours=2), "exp": now - timedelta(hours=1)},
        settings.secret_key.get_secret_value(),
        algorithm="HS256",
    )
    head, claims, signature = clerk.token.split(".")
    tampered_claims = json.loads(jwt.utils.base64url_decode(claims)) | {"role": "admin"}
    tampered = ".".join(
        [head, jwt.utils.base64url_encode(json.dumps(tampered_claims).encode()).decode(), signature]
    )
    made = {}
    async with app.state.db.unit_of_work(write=True) as uow:
        for name in ("deactivated", "demoted"):
            data = {"email": f"{name}@example.com", "password": f"{name}-password", "role": "clerk"}
            user = await users.create_user(uow.session, UserCreate.model_validate(data))
            made[name] = (
                user.id,
                security.create_access_token(user.id, Role.clerk, settings).token,
            )
    async with app.state.db.unit_of_work(write=True) as uow:
        await users.update_user(uow.session, made["deactivated"][0], UserUpdate(is_active=False))
        await users.update_user(uow.session, made["demoted"][0], UserUpdate(role=Role.viewer))
    again = security.create_access_token(made["demoted"][0], Role.viewer, settings).token
    return {
        "valid": clerk.token,
        "expired": expired,
        "tampered": tampered,
        "deactivated user": made["deactivated"][1],
        "demoted user": made["demoted"][1],
        "demoted user, signed in again": again,
    }


Probe = Callable[[str, str, dict[str, int]], Awaitable[Outcome]]


def _receipt(stock: dict[str, int]) -> dict[str, Any]:
    return {
        "product_id": stock["product"],
        "warehouse_id": stock["warehouse"],
        "kind": "receipt",
        "quantity": 1,
    }


async def _make_a_change(base: str, stock: dict[str, int]) -> None:
    admin_token = await _admin_token(base)
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        response = await http.post(
            f"{API}/stock/movements",
            json=_receipt(stock),
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert response.status_code == 201, response.text


async def _admin_token(base: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        response = await http.post(
            f"{API}/auth/token",
            data={"username": "admin@example.com", "password": "admin-password"},
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


def _from_problem(response: httpx.Response) -> Outcome:
    kinds: dict[int, Kind] = {401: "unauthenticated", 403: "forbidden"}
    assert response.status_code in kinds, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return Outcome(kinds[response.status_code], response.json()["detail"])


def _from_graphql(errors: list[dict[str, Any]]) -> Outcome:
    kinds: dict[str, Kind] = {"UNAUTHENTICATED": "unauthenticated", "FORBIDDEN": "forbidden"}
    assert len(errors) == 1, errors
    return Outcome(kinds[errors[0]["extensions"]["code"]], errors[0]["message"])


async def over_rest(base: str, token: str, stock: dict[str, int]) -> Outcome:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        response = await http.post(
            f"{API}/stock/movements",
            json=_receipt(stock),
            headers={"Authorization": f"Bearer {token}"},
        )
    if response.status_code == 201:
        return ACCEPTED
    return _from_problem(response)


async def over_graphql_http(base: str, token: str, stock: dict[str, int]) -> Outcome:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        response = await http.post(
            "/graphql",
            json={
                "query": RECEIPT,
                "variables": {"p": str(stock["product"]), "w": str(stock["warehouse"])},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    if "errors" not in body:
        assert body["data"]["recordMovement"]["__typename"] == "Movement", body
        return ACCEPTED
    return _from_graphql(body["errors"])


async def over_the_websocket(base: str, token: str, stock: dict[str, int]) -> Outcome:
    url = base.replace("http://", "ws://") + SOCKET + "?" + urlencode({"token": token})
    async with connect(url) as socket:
        # A refusal closes at once; an accepted socket waits for the change made next.
        closing = await _closing(socket, within=0.5)
        if closing is not None:
            return closing
        await _make_a_change(base, stock)
        change = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert change["product_id"] == stock["product"], change
        return ACCEPTED


async def _closing(socket: ClientConnection, within: float) -> Outcome | None:
    """How the server closed the socket within ``within`` seconds; None if it did not."""
    try:
        first = await asyncio.wait_for(socket.recv(), within)
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        frame = closed.rcvd
        assert frame is not None, "closed without a close frame"
        assert frame.code == 1008, frame
        return Outcome("closed 1008", frame.reason)
    raise AssertionError(f"a message before any change: {first!r}")


async def over_the_event_stream(base: str, token: str, stock: dict[str, int]) -> Outcome:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=None)) as http,
        http.stream("GET", EVENTS, headers=headers) as response,
    ):
        if response.status_code != 200:
            await response.aread()
            return _from_problem(response)
        lines = response.aiter_lines()
        assert (await asyncio.wait_for(anext(lines), 5)).startswith(": after movement ")
        await _make_a_change(base, stock)
        while not (line := await asyncio.wait_for(anext(lines), 5)).startswith("data: "):
            pass
        assert json.loads(line.removeprefix("data: "))["product_id"] == stock["product"]
        return ACCEPTED


async def over_a_subscription(base: str, token: str, stock: dict[str, int]) -> Outcome:
    url = base.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        init = {"Authorization": f"Bearer {token}"}
        await socket.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "connection_ack"
        subscribe = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}
        await socket.send(json.dumps(subscribe))
        # No message says "listening now": change the stock until a change arrives.
        for _ in range(20):
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), 0.3))
            except TimeoutError:
                await _make_a_change(base, stock)
                continue
            if message["type"] == "error":
                return _from_graphql(message["payload"])
            assert message["type"] == "next", message
            assert "errors" not in message["payload"], message
            return ACCEPTED
    raise AssertionError("the subscription neither refused nor received a change")


TRANSPORTS: dict[str, Probe] = {
    "REST": over_rest,
    "WebSocket": over_the_websocket,
    "event stream": over_the_event_stream,
    "GraphQL over HTTP": over_graphql_http,
    "GraphQL subscription": over_a_subscription,
}


@pytest.mark.parametrize("case", list(EXPECTED))
async def test_a_token_gets_the_same_outcome_on_every_transport(served, tokens, stock, case):
    token = tokens[case]
    seen = {name: await probe(served, token, stock) for name, probe in TRANSPORTS.items()}
    expected = EXPECTED[case]
    disagreeing = {name: got for name, got in seen.items() if not got.agrees_with(expected)}
    assert disagreeing == {}, f"expected {expected} everywhere"

"""The authorization matrix, generated from the app's own route table.

Every route either is on the public list or declares a role with
``require_role``; for each it checks no token, bad tokens of every kind, and
each role. A route added later without a role fails here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from starlette.routing import Mount, Route, WebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from inventory.config import Settings
from inventory.deps import RoleRequirement, SocketRoleRequirement
from inventory.main import create_app
from inventory.models import Role
from inventory.users import service as users
from inventory.users.schemas import UserCreate, UserUpdate
from inventory.vendor import VENDOR_URL
from tests.helpers import request_then_hang_up
from tests.processes import server_environment, serving

PUBLIC = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),  # documented as public
    ("POST", "/api/v1/auth/token"),
    # A refresh token is the credential of these two (tests/auth/test_sessions.py).
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    # GraphiQL page and the endpoint itself; resolvers check tokens (tests/graphql).
    ("GET", "/graphql"),
    ("POST", "/graphql"),
}
PUBLIC_WEBSOCKETS = {"/graphql"}  # the GraphQL server checks tokens (tests/graphql)
WEBSOCKET = "WEBSOCKET"
"""The method this table gives a WebSocket route; its role is declared as a REST route's is."""
PUBLIC_MOUNTS = {VENDOR_URL}  # the docs pages' scripts and styles


def _roles(dependant: Dependant) -> list[Role]:
    found = []
    for sub in dependant.dependencies:
        if isinstance(sub.call, RoleRequirement | SocketRoleRequirement):
            found.append(sub.call.role)
        found.extend(_roles(sub))
    return found


def route_table(app: FastAPI) -> list[tuple[str, str, Role | None]]:
    """(method, path, required role) for every endpoint; None means declared public."""
    table = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            assert route.path in PUBLIC_MOUNTS, f"unexpected mount {route.path}"
            continue
        if isinstance(route, WebSocketRoute):
            if str(context.path) in PUBLIC_WEBSOCKETS:
                continue
            assert isinstance(route, APIWebSocketRoute), f"unexpected websocket {context.path}"
            roles = _roles(context.dependant)
            required = max(roles, key=lambda r: r.rank) if roles else None
            table.append((WEBSOCKET, str(context.path), required))
            continue
        assert isinstance(route, Route), f"{route!r}: teach this test about its kind"
        # Plain Starlette routes (the OpenAPI document) cannot declare a role.
        roles = _roles(context.dependant) if isinstance(route, APIRoute) else []
        for method in sorted((context.methods or set()) - {"HEAD"}):
            required = max(roles, key=lambda r: r.rank) if roles else None
            table.append((method, str(context.path), required))
    return table


def undeclared(app: FastAPI) -> list[tuple[str, str]]:
    return [(m, p) for m, p, role in route_table(app) if role is None and (m, p) not in PUBLIC]


def test_every_route_is_public_or_declares_a_role(settings: Settings):
    assert undeclared(create_app(settings)) == []


def test_a_route_added_without_a_role_is_caught(settings: Settings):
    app = create_app(settings)

    @app.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"oops": "open to all"}

    assert undeclared(app) == [("GET", "/api/v1/forgotten")]


def _catalogue(path: str, item: str) -> dict[tuple[str, str], Role]:
    return {
        ("GET", path): Role.viewer,
        ("POST", path): Role.manager,
        ("GET", f"{path}/{item}"): Role.viewer,
        ("PATCH", f"{path}/{item}"): Role.manager,
        ("DELETE", f"{path}/{item}"): Role.manager,
    }


# The documented roles table, written out: who may call what.
EXPECTED: dict[tuple[str, str], Role | None] = {
    **dict.fromkeys(PUBLIC),
    ("GET", "/api/v1/users/me"): Role.viewer,
    ("GET", "/api/v1/users"): Role.admin,
    ("POST", "/api/v1/users"): Role.admin,
    ("GET", "/api/v1/users/{user_id}"): Role.admin,
    ("PATCH", "/api/v1/users/{user_id}"): Role.admin,
    **_catalogue("/api/v1/categories", "{entry_id}"),
    **_catalogue("/api/v1/suppliers", "{entry_id}"),
    **_catalogue("/api/v1/warehouses", "{entry_id}"),
    **_catalogue("/api/v1/products", "{product_id}"),
    ("GET", "/api/v1/products/{product_id}/history"): Role.viewer,
    ("GET", "/api/v1/stock"): Role.viewer,
    ("GET", "/api/v1/stock/movements"): Role.viewer,
    ("POST", "/api/v1/stock/movements"): Role.clerk,
    ("POST", "/api/v1/stock/transfers"): Role.clerk,
    ("GET", "/api/v1/stock/valuation"): Role.manager,
    ("GET", "/api/v1/counts"): Role.viewer,
    ("POST", "/api/v1/counts"): Role.clerk,
    ("GET", "/api/v1/counts/{count_id}"): Role.viewer,
    ("PUT", "/api/v1/counts/{count_id}/lines/{product_id}"): Role.clerk,
    ("POST", "/api/v1/counts/{count_id}/finish"): Role.manager,
    ("POST", "/api/v1/counts/{count_id}/cancel"): Role.clerk,
    ("POST", "/api/v1/reservations"): Role.clerk,
    ("GET", "/api/v1/reservations"): Role.viewer,
    ("GET", "/api/v1/reservations/{reservation_id}"): Role.viewer,
    ("POST", "/api/v1/reservations/{reservation_id}/confirm"): Role.clerk,
    ("POST", "/api/v1/reservations/{reservation_id}/release"): Role.clerk,
    ("POST", "/api/v1/purchase-orders"): Role.manager,
    ("GET", "/api/v1/purchase-orders"): Role.viewer,
    ("GET", "/api/v1/purchase-orders/{order_id}"): Role.viewer,
    ("PATCH", "/api/v1/purchase-orders/{order_id}"): Role.manager,
    ("POST", "/api/v1/purchase-orders/{order_id}/place"): Role.manager,
    ("POST", "/api/v1/purchase-orders/{order_id}/receive"): Role.clerk,
    ("POST", "/api/v1/purchase-orders/{order_id}/cancel"): Role.manager,
    ("POST", "/api/v1/sales-orders"): Role.clerk,
    ("GET", "/api/v1/sales-orders"): Role.viewer,
    ("GET", "/api/v1/sales-orders/{order_id}"): Role.viewer,
    ("POST", "/api/v1/sales-orders/{order_id}/confirm"): Role.clerk,
    ("POST", "/api/v1/sales-orders/{order_id}/allocate"): Role.clerk,
    ("POST", "/api/v1/sales-orders/{order_id}/ship"): Role.clerk,
    ("POST", "/api/v1/sales-orders/{order_id}/cancel"): Role.clerk,
    ("POST", "/api/v1/imports/products"): Role.manager,
    ("GET", "/api/v1/imports/{job_id}"): Role.manager,
    ("GET", "/api/v1/exports/products.csv"): Role.viewer,
    ("GET", "/api/v1/exports/stock.csv"): Role.viewer,
    ("GET", "/api/v1/exports/movements.csv"): Role.viewer,
    ("GET", "/api/v1/exports/purchase-orders.csv"): Role.viewer,
    ("GET", "/api/v1/exports/sales-orders.csv"): Role.viewer,
    ("GET", "/api/v1/stock/events"): Role.viewer,
    (WEBSOCKET, "/api/v1/ws/stock"): Role.viewer,
}
STREAMS = {("GET", "/api/v1/stock/events")}
"""Answers that never end by themselves: the matrix reads their status, then hangs up."""


def test_route_roles_match_the_spec(settings: Settings):
    """A new route, or a changed role, must be added to EXPECTED (and so to docs/api.md)."""
    table = {(m, p): role for m, p, role in route_table(create_app(settings))}
    assert table == EXPECTED


def _token(settings: Settings, claims: dict[str, Any], key: str | None = None, **kw: Any) -> str:
    secret = key if key is not None else settings.secret_key.get_secret_value()
    return jwt.encode(claims, secret, **({"algorithm": "HS256"} | kw))


@pytest.fixture
async def bad_tokens(app: FastAPI, settings: Settings, accounts) -> dict[str, str]:
    admin_id = accounts[Role.admin].id
    now = datetime.now(UTC)
    good = {"sub": str(admin_id), "role": "admin", "iat": now, "exp": now + timedelta(minutes=5)}
    async with app.state.db.unit_of_work(write=True) as uow:
        gone = await users.create_user(
            uow.session,
            UserCreate.model_validate(
                {"email": "gone@example.com", "password": "gone-password", "role": Role.admin}
            ),
        )
    deactivated = _token(settings, good | {"sub": str(gone.id)})
    async with app.state.db.unit_of_work(write=True) as uow:
        await users.update_user(uow.session, gone.id, UserUpdate(is_active=False))
    no_exp = {k: v for k, v in good.items() if k != "exp"}
    return {
        "expired": _token(
            settings, good | {"iat": now - timedelta(hours=2), "exp": now - timedelta(hours=1)}
        ),
        "no exp": _token(settings, no_exp),
        "no iat": _token(settings, {k: v for k, v in good.items() if k != "iat"}),
        "no sub": _token(settings, {k: v for k, v in good.items() if k != "sub"}),
        "other key": _token(settings, good, key="another-secret-key-that-is-long-enough-0123"),
        "alg none": jwt.encode(good, None, algorithm="none"),
        "alg HS384": _token(settings, good, algorithm="HS384"),
        "unknown user": _token(settings, good | {"sub": "999999"}),
        "huge sub": _token(settings, good | {"sub": "9" * 40}),
        "deactivated user": deactivated,
        "garbage": "not.a.jwt",
    }


def _request_args(method: str, path: str) -> tuple[str, dict[str, Any]]:
    url = re.sub(r"\{[^}]+\}", "1", path)
    return url, ({"json": {}} if method in ("POST", "PATCH", "PUT") else {})


async def _stream_start(
    app: FastAPI, method: str, url: str, headers: dict[str, str]
) -> httpx.Response:
    """Call the app directly: the status and headers of its answer, then hang up.

    An endless answer never completes through httpx's ASGI transport, which
    waits for the whole body.
    """
    started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    hung_up = asyncio.Event()
    receive = request_then_hang_up(hung_up)

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start" and not started.done():
            started.set_result(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    call = asyncio.create_task(app(scope, receive, send))
    try:
        start = await asyncio.wait_for(started, 10)
    finally:
        hung_up.set()
        await asyncio.wait_for(call, 10)
    return httpx.Response(start["status"], headers=list(start.get("headers", [])))


async def test_authorization_matrix(
    app: FastAPI, anonymous: httpx.AsyncClient, accounts, bad_tokens
):
    async def call(
        method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        if (method, path) in STREAMS:
            return await _stream_start(app, method, url, headers or {})
        return await anonymous.request(method, url, headers=headers, **kwargs)

    checked = 0
    for (method, path), required in EXPECTED.items():
        if method == WEBSOCKET:
            continue  # test_websocket_matrix
        url, kwargs = _request_args(method, path)
        anonymous_response = await call(method, url, **kwargs)
        if required is None:
            assert anonymous_response.status_code not in (401, 403), (method, path)
            continue
        assert anonymous_response.status_code == 401, (method, path)
        assert anonymous_response.headers["www-authenticate"] == "Bearer"

        for name, token in bad_tokens.items():
            response = await call(
                method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
            assert response.status_code == 401, (method, path, name, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.headers["content-type"] == "application/problem+json"

        for role, account in accounts.items():
            response = await call(method, url, headers=account.headers, **kwargs)
            if role.allows(required):
                assert response.status_code not in (401, 403), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role)
                assert response.headers["content-type"] == "application/problem+json"
        checked += 1
    assert checked >= 20


async def test_websocket_matrix(settings: Settings, accounts, bad_tokens):
    """A WebSocket is refused with close code 1008 (after the handshake, so browsers see it)."""
    sockets = {p: role for (m, p), role in EXPECTED.items() if m == WEBSOCKET}
    with serving("--no-migrate", **server_environment(settings)) as server:
        base = server.url.replace("http://", "ws://")

        async def refusal(path: str, token: str | None) -> int | None:
            """The close code the server sent, or None if the socket stayed open."""
            query = "" if token is None else "?" + urlencode({"token": token})
            async with connect(base + path + query) as socket:
                try:
                    await asyncio.wait_for(socket.recv(), 0.5)
                except TimeoutError:
                    return None
                except ConnectionClosed as closed:
                    return closed.rcvd.code if closed.rcvd else -1
            raise AssertionError(f"{path} sent a message unasked")

        for path, required in sockets.items():
            assert required is not None
            assert await refusal(path, None) == 1008, path
            for name, token in bad_tokens.items():
                assert await refusal(path, token) == 1008, (path, name)
            for role, account in accounts.items():
                expected = None if role.allows(required) else 1008
                assert await refusal(path, account.token) == expected, (path, role)
    assert sockets

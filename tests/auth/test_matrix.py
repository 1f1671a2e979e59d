"""The authorization matrix, generated from the app's own route table.

Every route either is on the public list or declares a role with
``require_role``; for each it checks no token, bad tokens of every kind, and
each role. A route added later without a role fails here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount, Route, WebSocketRoute

from inventory.config import Settings
from inventory.deps import RoleRequirement
from inventory.main import create_app
from inventory.models import Role
from inventory.users import service as users
from inventory.users.schemas import UserCreate, UserUpdate
from inventory.vendor import VENDOR_URL

PUBLIC = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("POST", "/api/v1/auth/token"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    # GraphiQL page and the endpoint itself; resolvers check tokens (tests/graphql).
    ("GET", "/graphql"),
    ("POST", "/graphql"),
}
PUBLIC_WEBSOCKETS = {"/graphql"}
PUBLIC_MOUNTS = {VENDOR_URL}  # the docs pages' scripts and styles


def _roles(dependant: Dependant) -> list[Role]:
    found = []
    for sub in dependant.dependencies:
        if isinstance(sub.call, RoleRequirement):
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
            assert str(context.path) in PUBLIC_WEBSOCKETS, f"unexpected websocket {context.path}"
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


# The SPEC's roles table, written out: who may call what.
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
    ("GET", "/api/v1/stock"): Role.viewer,
    ("GET", "/api/v1/stock/movements"): Role.viewer,
    ("POST", "/api/v1/stock/movements"): Role.clerk,
    ("POST", "/api/v1/stock/transfers"): Role.clerk,
    ("POST", "/api/v1/imports/products"): Role.manager,
    ("GET", "/api/v1/imports/{job_id}"): Role.manager,
    ("GET", "/api/v1/exports/products.csv"): Role.viewer,
    ("GET", "/api/v1/exports/stock.csv"): Role.viewer,
    ("GET", "/api/v1/exports/movements.csv"): Role.viewer,
}


def test_route_roles_match_the_spec(settings: Settings):
    """A new route, or a changed role, must be added to EXPECTED (and so to the SPEC)."""
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


async def test_authorization_matrix(
    app: FastAPI, anonymous: httpx.AsyncClient, accounts, bad_tokens
):
    checked = 0
    for (method, path), required in EXPECTED.items():
        url, kwargs = _request_args(method, path)
        anonymous_response = await anonymous.request(method, url, **kwargs)
        if required is None:
            assert anonymous_response.status_code not in (401, 403), (method, path)
            continue
        assert anonymous_response.status_code == 401, (method, path)
        assert anonymous_response.headers["www-authenticate"] == "Bearer"

        for name, token in bad_tokens.items():
            response = await anonymous.request(
                method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
            assert response.status_code == 401, (method, path, name, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.headers["content-type"] == "application/problem+json"

        for role, account in accounts.items():
            response = await anonymous.request(method, url, headers=account.headers, **kwargs)
            if role.allows(required):
                assert response.status_code not in (401, 403), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role)
                assert response.headers["content-type"] == "application/problem+json"
        checked += 1
    assert checked >= 20

"""Every failure is problem+json with a request id, and no internals reach the client."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from inventory import errors
from inventory.config import Settings
from inventory.db import Database
from inventory.deps import UnitOfWorkDep
from inventory.main import create_app
from inventory.models import Category
from inventory.problems import PROBLEMS, kind_of, problem_responses, request_loc
from tests.helpers import API, assert_problem


@pytest.fixture
async def probe_app(settings: Settings, client: httpx.AsyncClient):
    """The real app plus a few routes that misbehave on purpose."""
    app = create_app(settings)
    opened: list[int] = []

    @app.get("/_test/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    @app.post("/_test/commit-fails", status_code=201)
    async def commit_fails(uow: UnitOfWorkDep) -> dict[str, str]:
        # Two rows with one unique name and no flush: the failure surfaces at commit.
        uow.session.add_all([Category(name="Twice"), Category(name="Twice")])
        return {"status": "created"}

    @app.get("/_test/no-database")
    async def no_database(uow: UnitOfWorkDep) -> dict[str, bool]:
        return {"ok": True}

    async with app.router.lifespan_context(app):
        database: Database = app.state.db

        def counting(factory: Any) -> Any:
            def open_session() -> Any:
                opened.append(1)
                return factory()

            return open_session

        app.state.db = Database(
            database.engine,
            counting(database.read_sessions),
            counting(database.write_sessions),
        )
        app.state.opened = opened
        yield app


@pytest.fixture
async def probe(probe_app: FastAPI, client: httpx.AsyncClient):
    transport = httpx.ASGITransport(app=probe_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=client.headers
    ) as http:
        yield http


async def test_unhandled_error_is_generic_500_problem(probe):
    response = await probe.get("/_test/boom")
    body = assert_problem(response, 500)
    assert body["detail"] == "An unexpected error occurred."
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text


async def test_failed_commit_is_an_error_not_a_success(probe, client):
    response = await probe.post("/_test/commit-fails")
    assert response.status_code == 500
    assert_problem(response, 500)
    assert (await client.get(f"{API}/categories")).json()["items"] == []


async def test_request_that_never_uses_the_database_opens_no_session(probe, probe_app):
    response = await probe.get("/_test/no-database")
    assert response.json() == {"ok": True}
    assert probe_app.state.opened == []
    # A first read: one short session to know the caller, one for the answer.
    await probe.get(f"{API}/categories")
    assert probe_app.state.opened == [1, 1]
    # The same read again: the caller and the answer are remembered, no session at all.
    again = await probe.get(f"{API}/categories")
    assert again.headers["x-cache"] == "HIT"
    assert probe_app.state.opened == [1, 1]


async def test_unknown_route_is_404_problem(client):
    body = assert_problem(await client.get("/api/v1/nothing-here"), 404)
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"


async def test_wrong_method_is_405_problem_with_allow(client):
    response = await client.put(f"{API}/categories")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_request_id_is_echoed_when_sane(client):
    response = await client.get("/health", headers={"X-Request-ID": "abc-123.DEF:9"})
    assert response.headers["x-request-id"] == "abc-123.DEF:9"
    problem = await client.get(f"{API}/products/999", headers={"X-Request-ID": "trace-42"})
    assert problem.headers["x-request-id"] == "trace-42"
    assert problem.json()["request_id"] == "trace-42"


@pytest.mark.parametrize("sent", ["x" * 129, "has space", "new\\nline", ""])
async def test_unsafe_request_id_is_replaced(client, sent):
    response = await client.get("/health", headers={"X-Request-ID": sent})
    assert response.headers["x-request-id"] != sent
    assert len(response.headers["x-request-id"]) == 32


async def test_every_response_has_a_fresh_request_id(client):
    first = await client.get("/health")
    second = await client.get("/health")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_validation_errors_do_not_echo_input(client):
    response = await client.post(f"{API}/categories", json={"name": 5, "secret": "hunter2"})
    body = assert_problem(response, 422)
    assert body["type"] == "urn:inventory:problem:validation-failed"
    assert "hunter2" not in response.text
    for error in body["errors"]:
        assert set(error) == {"loc", "msg", "type"}


@pytest.fixture
async def restricted(settings: Settings):
    app = create_app(
        settings.model_copy(
            update={
                "allowed_hosts": ["api.example", "*.internal.example"],
                "cors_origins": ["https://shop.example"],
            }
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.example") as http:
            yield http


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("api.example", True),
        ("api.example:8443", True),
        ("API.EXAMPLE", True),
        ("db.internal.example", True),
        ("internal.example", False),
        ("evil.example", False),
        ("api.example.evil", False),
        ("[::1]:8000", False),
    ],
)
async def test_allowed_hosts(restricted, host, allowed):
    response = await restricted.get("/health", headers={"Host": host})
    if allowed:
        assert response.status_code == 200
    else:
        body = assert_problem(response, 400)
        assert "Host" in body["detail"]


async def test_cors_allows_configured_origin_only(restricted):
    preflight = await restricted.options(
        f"{API}/products",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "PATCH"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
    simple = await restricted.get("/health", headers={"Origin": "https://shop.example"})
    assert simple.headers["access-control-allow-origin"] == "https://shop.example"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    other = await restricted.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_no_cors_headers_by_default(client):
    response = await client.get("/health", headers={"Origin": "https://shop.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_connection_is_returned_as_soon_as_an_error_response_is_sent(client, app):
    await client.post(f"{API}/categories", json={"name": "Once"})
    pool = app.state.db.engine.pool
    response = await client.post(f"{API}/categories", json={"name": "Once"})
    assert response.status_code == 409
    assert pool.checkedout() == 0


@pytest.mark.backend("sqlite")
async def test_a_locked_sqlite_database_is_503_with_retry_after(settings, client):
    app = create_app(settings.model_copy(update={"sqlite_busy_timeout_ms": 50}))
    path = settings.database_url.split(":///", 1)[1]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=client.headers
        ) as http:
            blocker = sqlite3.connect(path, isolation_level=None)
            try:
                blocker.execute("BEGIN EXCLUSIVE")
                response = await http.post(f"{API}/categories", json={"name": "Blocked"})
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
    body = assert_problem(response, 503)
    assert response.headers["retry-after"] == "1"
    assert "BEGIN" not in response.text
    assert "locked" not in body["detail"]
    assert (await client.get(f"{API}/categories")).json()["items"] == []


@pytest.mark.parametrize(
    "module",
    [
        "inventory.errors",
        "inventory.products.service",
        "inventory.stock.service",
        "inventory.catalogue.service",
        "inventory.jobs.dispatch",
    ],
)
def test_domain_errors_bring_no_web_framework_into_a_service(module):
    """A fresh interpreter: importing the module loads no web framework, directly or not."""
    check = (
        f"import sys, {module}; "
        "print(sorted(n for n in ('fastapi', 'starlette', 'strawberry') if n in sys.modules))"
    )
    loaded = subprocess.run(  # noqa: S603 - this interpreter, a fixed program
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_every_domain_error_has_a_rest_answer():
    domain = [cls for cls in vars(errors).values() if isinstance(cls, type)]
    for error in domain:
        if issubclass(error, errors.DomainError):
            assert error in PROBLEMS, error
    assert kind_of(errors.InsufficientStock).code == "insufficient-stock"
    broker = kind_of(errors.BrokerUnavailable)
    assert (broker.status, broker.code) == (503, "broker-unavailable")
    assert broker.headers is not None
    assert broker.headers(errors.BrokerUnavailable("away")) == {"Retry-After": "5"}
    limited = kind_of(errors.TooManyRequests)
    assert limited.headers is not None
    assert limited.headers(errors.TooManyRequests("slow down", retry_after=7)) == {
        "Retry-After": "7"
    }
    assert kind_of(KeyError).status == 500


def test_documented_errors_come_from_the_table():
    assert list(problem_responses(errors.NotFound, errors.PreconditionFailed, 422)) == [
        404,
        412,
        422,
    ]
    with pytest.raises(ValueError, match="no error kind answers with"):
        problem_responses(418)


def test_a_service_location_is_a_body_field_and_a_front_location_stays():
    assert request_loc(("category_id",)) == ["body", "category_id"]
    assert request_loc(("items", 0, "sku")) == ["body", "items", 0, "sku"]
    assert request_loc(("query", "cursor")) == ["query", "cursor"]
    assert request_loc(("header", "Idempotency-Key")) == ["header", "Idempotency-Key"]


async def test_a_body_that_is_not_utf8_is_the_documented_422(client):
    response = await client.post(
        f"{API}/categories",
        content=b'{"name": "caf\xe9"}',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 422)
    assert body["type"] == "urn:inventory:problem:validation-failed"
    assert body["errors"] == [
        {"loc": ["body", 13], "msg": "JSON decode error", "type": "json_invalid"}
    ]
    assert (await client.get(f"{API}/categories")).json()["items"] == []


@pytest.mark.parametrize("sent", [b"{", b"[" * 100_000], ids=["truncated", "too-deep"])
async def test_a_body_that_does_not_parse_is_the_same_422(client, sent):
    response = await client.patch(
        f"{API}/categories/1", content=sent, headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422)
    assert [(e["loc"][0], e["type"]) for e in body["errors"]] == [("body", "json_invalid")]

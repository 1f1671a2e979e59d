"""Production operations in one process: limits, compression, docs switch, log context,
the container files' lint and the two lock files agreeing."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from inventory.config import Settings
from inventory.main import create_app
from inventory.models import Role
from tests.conftest import Account
from tests.helpers import API, assert_problem, receive_stock

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def app_with(
    settings: Settings, accounts: dict[Role, Account]
) -> AsyncIterator[Callable[..., Any]]:
    """A client (as ``role``) of a fresh app with some settings changed."""
    async with AsyncExitStack() as stack:

        async def open_client(role: Role = Role.manager, **overrides: Any) -> httpx.AsyncClient:
            prefix = f"{settings.redis_key_prefix}:{uuid.uuid4().hex[:8]}"
            app = create_app(settings.model_copy(update={"redis_key_prefix": prefix, **overrides}))
            await stack.enter_async_context(app.router.lifespan_context(app))
            return await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://testserver",
                    headers=accounts[role].headers,
                )
            )

        yield open_client


async def test_writes_past_the_rate_are_429_with_retry_after_for_rest_and_graphql(app_with):
    http = await app_with(write_rate_limit="3/minute")
    for n in range(3):
        made = await http.post(f"{API}/categories", json={"name": f"C{n}"})
        assert made.status_code == 201
    refused = await http.post(f"{API}/categories", json={"name": "C3"})
    assert_problem(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Reads are not writes.
    assert (await http.get(f"{API}/categories")).status_code == 200
    # GraphQL mutations count against the same user's writes.
    answer = await http.post(
        "/graphql",
        json={"query": 'mutation { createCategory(input: {name: "G"}) { __typename } }'},
    )
    assert answer.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_only_the_upload_route_takes_upload_sized_bodies(app_with):
    http = await app_with(max_body_bytes=2048)
    files = {"file": ("big.csv", b"x" * 4000, "text/csv")}
    assert_problem(await http.post(f"{API}/categories", files=files), 413)
    # The import route's own checks answer (here: not a product CSV), not the body limit.
    assert (await http.post(f"{API}/imports/products", files=files)).status_code == 422


async def test_a_body_over_the_limit_is_413_declared_or_streamed(app_with):
    http = await app_with(max_body_bytes=2048)
    big = {"name": "x", "description": "d" * 4000}
    assert_problem(await http.post(f"{API}/categories", json=big), 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"name": "x", "description": "'
        for _ in range(10):
            yield b"d" * 1000
        yield b'"}'

    streamed = await http.post(
        f"{API}/categories", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_problem(streamed, 413)
    assert (await http.get(f"{API}/categories")).json()["items"] == []
    # Under the limit is fine.
    assert (await http.post(f"{API}/categories", json={"name": "small"})).status_code == 201


async def test_large_answers_are_compressed_small_ones_not(app_with):
    http = await app_with()
    for n in range(30):
        await http.post(
            f"{API}/categories", json={"name": f"Category {n}", "description": "x" * 50}
        )
    large = await http.get(f"{API}/categories", headers={"Accept-Encoding": "gzip"})
    assert large.headers["content-encoding"] == "gzip"
    assert len(large.json()["items"]) == 30  # httpx decompressed it
    small = await http.get(f"{API}/categories/1", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers


async def test_docs_can_be_turned_off(app_with):
    http = await app_with(docs_enabled=False)
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert (await http.get(path)).status_code == 404
    # GraphiQL is part of the docs; the GraphQL API itself stays.
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert "graphiql" not in page.text.lower()
    answer = await http.post("/graphql", json={"query": "{ me { email } }"})
    assert answer.json()["data"]["me"]["email"] == "manager@example.com"
    assert (await http.get("/health")).status_code == 200


async def test_every_line_logged_in_a_request_names_it_and_its_user(app_with, caplog, accounts):
    http = await app_with()
    # Creating the app configured logging afresh: hand the capturing handler back.
    logging.getLogger().addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    made = await http.post(
        f"{API}/categories", json={"name": "Logged"}, headers={"X-Request-ID": "trace-me-42"}
    )
    assert made.headers["x-request-id"] == "trace-me-42"
    mine = [r for r in caplog.records if getattr(r, "request_id", None) == "trace-me-42"]
    access = [r for r in mine if r.name == "inventory.access"]
    assert len(access) == 1
    assert access[0].__dict__["status"] == 201
    assert access[0].__dict__["route"] == "/api/v1/categories"
    assert access[0].__dict__["user_id"] == accounts[Role.manager].id
    # GraphQL requests name their user too.
    await http.post(
        "/graphql", json={"query": "{ me { email } }"}, headers={"X-Request-ID": "gq-7"}
    )
    graphql = [
        r
        for r in caplog.records
        if r.name == "inventory.access" and r.__dict__["request_id"] == "gq-7"
    ]
    assert [r.__dict__["user_id"] for r in graphql] == [accounts[Role.manager].id]


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    result = subprocess.run(  # noqa: S603 - the linter from the dev dependencies
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_runtime_lock_pins_the_same_versions_as_the_full_one():
    def pins(name: str) -> dict[str, str]:
        lines = (ROOT / name).read_text().splitlines()
        return dict(line.split("==", 1) for line in lines if "==" in line)

    full, runtime = pins("requirements.lock"), pins("requirements.runtime.lock")
    assert runtime.items() <= full.items()
    assert {"gunicorn", "uvicorn-worker", "prometheus-client", "celery"} <= runtime.keys()
    assert "pytest" not in runtime


def sample(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_cache_lookups_and_ledger_entries(app_with, accounts):
    http = await app_with(role=Role.admin)
    before = (await http.get("/metrics")).text
    warehouse = (await http.post(f"{API}/warehouses", json={"code": "M1", "name": "M"})).json()
    product = (
        await http.post(f"{API}/products", json={"sku": "M-1", "name": "M", "unit_price": "1"})
    ).json()
    for _ in range(2):
        assert (await http.get(f"{API}/products/{product['id']}")).status_code == 200
    moved = await http.post(
        f"{API}/stock/transfers",
        json={
            "product_id": product["id"],
            "from_warehouse_id": warehouse["id"],
            "to_warehouse_id": warehouse["id"] + 1000,
            "quantity": 1,
        },
    )
    assert moved.status_code in (404, 409)  # refused: nothing committed, nothing counted
    assert (await receive_stock(http, product["id"], warehouse["id"], 3)).status_code == 201
    after = (await http.get("/metrics")).text
    hits = 'inventory_cache_lookups_total{result="hit"}'
    misses = 'inventory_cache_lookups_total{result="miss"}'
    assert sample(after, hits) - sample(before, hits) == 1
    assert sample(after, misses) - sample(before, misses) == 1
    entries = "inventory_stock_movements_total "
    assert sample(after, entries) - sample(before, entries) == 1
    assert 'inventory_import_jobs{status="queued"} 0.0' in after


async def test_every_request_body_is_documented_with_an_example(app_with):
    schema = (await (await app_with()).get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                ref = content["schema"].get("$ref", "")
                body = components.get(ref.rsplit("/", 1)[-1], content["schema"])
                if media == "application/json" and not body.get("examples"):
                    missing.append(f"{method.upper()} {path}")
    assert missing == []
    assert schema["info"]["license"]["name"] == "MIT"
    assert schema["info"]["contact"]["url"]
    assert {tag["name"] for tag in schema["tags"]} >= {"products", "stock", "csv", "graphql"}


def test_a_token_in_a_logged_url_is_redacted(settings, capsys):
    from inventory.logs import configure_logging

    configure_logging(settings)  # its handler writes to this test's captured stderr
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5", "/api/v1/ws/stock?token=eyJabc.def&x=1"
    )
    err = capsys.readouterr().err
    assert "eyJabc" not in err
    assert "/api/v1/ws/stock?token=[redacted]&x=1" in err

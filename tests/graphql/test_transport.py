"""Each operation on its transport and in the right transaction; errors shaped on every path."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from strawberry.extensions.validation_cache import _get_validate_cache

from graphql_schema.context import Context
from graphql_schema.schema import build_schema
from inventory.config import Environment
from inventory.models import Role
from tests.graphql.helpers import gql
from tests.helpers import API, create, create_product

RECEIPT = """
mutation($p: ID!, $w: ID!) {
  first: recordMovement(input: {productId: $p, warehouseId: $w, kind: RECEIPT, quantity: 10}) {
    ... on Movement { product { stockLevels { quantity } } }
  }
  second: recordMovement(input: {productId: $p, warehouseId: $w, kind: RECEIPT, quantity: 5}) {
    ... on Movement { product { stockLevels { quantity } } }
  }
}
"""


async def test_each_mutation_answers_with_the_state_it_left(client):
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "T-1")
    body = await gql(client, RECEIPT, p=str(product["id"]), w=str(warehouse["id"]))
    assert body["data"] == {
        "first": {"product": {"stockLevels": [{"quantity": 10}]}},
        "second": {"product": {"stockLevels": [{"quantity": 15}]}},
    }
    levels = (await client.get(f"{API}/stock", params={"product_id": product["id"]})).json()
    assert [level["quantity"] for level in levels["items"]] == [15]


@pytest.mark.backend("sqlite")
async def test_queries_do_not_queue_behind_writers(app, client):
    """SQLite has one writer at a time; a query must not wait for it (nor take its lock)."""
    await create(client, "/categories", name="Tools")
    gate: asyncio.Lock = app.state.db.write_gate
    async with gate:  # a long write elsewhere in this process
        body = await asyncio.wait_for(gql(client, "{ categories { edges { node { name } } } }"), 5)
        anonymous = await asyncio.wait_for(gql(client, "{ __typename }", {"Authorization": ""}), 5)
    assert "errors" not in body, body
    assert anonymous["data"] == {"__typename": "Query"}


async def test_a_subscription_over_http_is_a_bad_request(client):
    body = await gql(client, "subscription { stockChanged { quantity } }")
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_REQUEST"]


async def test_repeated_queries_are_validated_once(client):
    validate: Any = _get_validate_cache(128)
    query = "{ warehouses { edges { node { code name } } } }"
    await gql(client, query)
    before = validate.cache_info().hits
    for _ in range(3):
        assert "errors" not in await gql(client, query)
    assert validate.cache_info().hits == before + 3


async def test_expected_errors_are_not_logged_as_errors(anonymous, client, caplog):
    caplog.set_level(logging.INFO)
    await gql(anonymous, "{ me { email } }")  # UNAUTHENTICATED
    await gql(client, '{ products(after: "junk") { edges { cursor } } }')  # BAD_USER_INPUT
    await gql(client, "{ nope }")  # validation
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


class BrokenFeed:
    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Any]:
        raise RuntimeError("redis://secret-host:6379 refused")
        yield  # pragma: no cover - never reached


async def _broken_lookup(*args: Any) -> None:
    raise RuntimeError("connect to 10.0.0.5:5432 failed for user inventory")


@pytest.mark.parametrize("broken", ["feed", "user lookup"])
async def test_subscription_errors_are_masked_outside_development(
    app, settings, accounts, monkeypatch, broken
):
    if broken == "user lookup":
        monkeypatch.setattr("inventory.auth.signin.users.get_active_user", _broken_lookup)
    production = settings.model_copy(update={"env": Environment.production})
    context = Context(
        database=app.state.db,
        settings=production,
        feed=BrokenFeed() if broken == "feed" else app.state.change_feed,  # type: ignore[arg-type]
        remembered=app.state.cache,
        transaction=None,
        handshake_token=accounts[Role.viewer].token,
    )
    stream = await build_schema(production).subscribe(
        "subscription { stockChanged { quantity } }", context_value=context
    )
    # As a transport does: each result as it is yielded, before the stream ends.
    sent = [
        [(error.message, error.extensions) for error in result.errors or []]
        async for result in stream
    ]
    assert sent == [
        [
            (
                "An unexpected error occurred.",
                {"code": "INTERNAL_SERVER_ERROR", "request_id": None},
            )
        ]
    ]

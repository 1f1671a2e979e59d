"""The write rate's one rule on both fronts: each write request is charged once, when its
caller is signed in, for the writes it asks for (a REST write: one; a GraphQL mutation
request: one per top-level field); reads and callers with no valid token are not charged."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from inventory.config import Settings
from inventory.main import create_app
from inventory.models import Role
from tests.conftest import Account
from tests.helpers import API, assert_problem

THREE_CATEGORIES = """
mutation {
  a: createCategory(input: {name: "A"}) { __typename }
  ...More
}
fragment More on Mutation {
  b: createCategory(input: {name: "B"}) { __typename }
  ... on Mutation { c: createCategory(input: {name: "C"}) { __typename } }
}
"""


@pytest.fixture
async def http(
    settings: Settings, accounts: dict[Role, Account]
) -> AsyncIterator[httpx.AsyncClient]:
    """A manager's client of an app that allows three writes a minute."""
    prefix = f"{settings.redis_key_prefix}:{uuid.uuid4().hex[:8]}"
    app = create_app(
        settings.model_copy(update={"redis_key_prefix": prefix, "write_rate_limit": "3/minute"})
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers=accounts[Role.manager].headers,
        ) as client,
    ):
        yield client


async def names(http: httpx.AsyncClient) -> list[str]:
    return [c["name"] for c in (await http.get(f"{API}/categories")).json()["items"]]


async def test_a_mutation_request_is_charged_for_each_of_its_fields(http):
    body = (await http.post("/graphql", json={"query": THREE_CATEGORIES})).json()
    assert "errors" not in body, body
    refused = await http.post(f"{API}/categories", json={"name": "D"})
    assert_problem(refused, 429)
    assert sorted(await names(http)) == ["A", "B", "C"]


async def test_a_mutation_request_over_the_rate_writes_nothing(http):
    assert (await http.post(f"{API}/categories", json={"name": "First"})).status_code == 201
    body = (await http.post("/graphql", json={"query": THREE_CATEGORIES})).json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["RATE_LIMITED"]
    assert await names(http) == ["First"]


async def test_reads_and_refused_callers_are_not_charged(http):
    for _ in range(5):
        assert (await http.get(f"{API}/categories")).status_code == 200
        query = await http.post("/graphql", json={"query": "{ categories { edges { cursor } } }"})
        assert "errors" not in query.json()
        anonymous = {"Authorization": "Bearer not-a-token"}
        refused = await http.post(f"{API}/categories", json={"name": "X"}, headers=anonymous)
        assert refused.status_code == 401
        mutation = 'mutation { createCategory(input: {name: "X"}) { __typename } }'
        graphql = await http.post("/graphql", json={"query": mutation}, headers=anonymous)
        assert graphql.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    for n in range(3):
        assert (await http.post(f"{API}/categories", json={"name": f"C{n}"})).status_code == 201
    assert_problem(await http.post(f"{API}/categories", json={"name": "C3"}), 429)

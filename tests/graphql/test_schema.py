"""GraphQL over the same services: auth codes, batching, limits, error shaping, introspection.

Mutations by role are in test_authorization.py, the catalogue mutations in
test_mutations.py, and answers compared with REST's in test_parity.py.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from inventory.models import Role
from tests.graphql.helpers import LISTINGS, gql
from tests.helpers import API, create, create_product


async def test_no_token_is_unauthenticated_and_gives_no_data(anonymous, accounts):
    body = await gql(anonymous, "{ products { edges { node { sku } } } }")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    me = await gql(anonymous, "{ me { email role } }", accounts[Role.viewer].headers)
    assert me["data"]["me"] == {"email": "viewer@example.com", "role": "viewer"}


RECORD = """
mutation($input: RecordMovementInput!) {
  recordMovement(input: $input) { ... on Movement { quantity product { sku } } }
}
"""


async def test_a_recorded_movement_resolves_its_product(client):
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "G-1")
    body = await gql(
        client,
        RECORD,
        input={
            "productId": str(product["id"]),
            "warehouseId": str(warehouse["id"]),
            "kind": "RECEIPT",
            "quantity": 5,
        },
    )
    assert body["data"]["recordMovement"] == {"quantity": 5, "product": {"sku": "G-1"}}


NESTED = """
query($first: Int) { products(first: $first) { edges { node {
  sku category { name } supplier { name } stockLevels { quantity warehouse { code } }
} } pageInfo { hasNextPage endCursor } } }
"""


@pytest.mark.parametrize("count", [3, 40])
async def test_nested_fields_are_batched(client, engine, count):
    category = await create(client, "/categories", name="Tools")
    supplier = await create(client, "/suppliers", name="Acme")
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    for n in range(count):
        product = await create_product(
            client, f"N-{n:03d}", category_id=category["id"], supplier_id=supplier["id"]
        )
        await client.post(
            f"{API}/stock/movements",
            json={
                "product_id": product["id"],
                "warehouse_id": warehouse["id"],
                "kind": "receipt",
                "quantity": 1,
            },
        )
    statements: list[str] = []

    def count_statement(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", count_statement)
    try:
        body = await gql(client, NESTED, first=100)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count_statement)
    edges = body["data"]["products"]["edges"]
    assert len(edges) == count
    assert edges[0]["node"]["category"] == {"name": "Tools"}
    assert edges[0]["node"]["stockLevels"] == [{"quantity": 1, "warehouse": {"code": "MAIN"}}]
    # Products, categories, suppliers, levels with their warehouses; the same four
    # for 3 products or 40 (the caller is remembered from the requests above).
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 4, selects


async def test_over_deep_and_over_aliased_queries_are_refused(client):
    deep = (
        "{ products { edges { node { stockLevels { product { stockLevels { product {"
        " stockLevels { product { stockLevels { product { sku } } } } } } } } } } } }"
    )
    body = await gql(client, deep)
    assert body["data"] is None
    assert "depth" in body["errors"][0]["message"].lower()
    aliases = "{ " + " ".join(f"a{n}: me {{ email }}" for n in range(1000)) + " }"
    response = await client.post("/graphql", json={"query": aliases})
    assert response.json()["data"] is None


async def test_graphiql_page_is_served_without_a_token(anonymous):
    response = await anonymous.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


# Not base64 JSON; and well-formed, but for a sort order no list has.
BAD_CURSORS = ["garbage", base64.urlsafe_b64encode(b'["nope",1,1]').decode()]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
@pytest.mark.parametrize("field", list(LISTINGS))
async def test_a_cursor_rest_refuses_is_bad_user_input(client, field, cursor):
    listing = LISTINGS[field]
    rest = await client.get(f"{API}/{listing.path}", params={"cursor": cursor})
    assert rest.status_code == 422
    body = await gql(client, listing.query, after=cursor)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("field", list(LISTINGS))
async def test_page_size_is_refused_outside_rests_limits(client, field):
    listing = LISTINGS[field]
    for first in (0, -1, 201):
        body = await gql(client, listing.query, first=first)
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
        assert "first" in body["errors"][0]["message"]
        rest = await client.get(f"{API}/{listing.path}", params={"limit": first})
        assert rest.status_code == 422
    for accepted in (1, 200, None):
        body = await gql(client, listing.query, first=accepted)
        assert "errors" not in body, body


async def test_unexpected_errors_are_masked_outside_development_with_the_request_id(
    client, monkeypatch
):
    from graphql_schema import queries

    class Broken:
        class categories:
            @staticmethod
            async def list(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("secret internals")

    monkeypatch.setattr(queries, "catalogue", Broken)
    response = await client.post(
        "/graphql",
        json={"query": "{ categories { edges { node { name } } } }"},
        headers={"X-Request-ID": "rid-7"},
    )
    error = response.json()["errors"][0]
    assert error["message"] == "An unexpected error occurred."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "request_id": "rid-7"}
    assert "secret" not in response.text


async def test_field_suggestions_are_off_outside_development(client):
    body = await gql(client, "{ products { edges { node { skuu } } } }")
    assert "Did you mean" not in body["errors"][0]["message"]


INTROSPECT = "{ __schema { queryType { name } } }"


@pytest.mark.parametrize(
    ("env", "setting", "allowed"),
    [
        ("test", None, True),
        ("production", None, False),
        ("production", True, True),
        ("test", False, False),
    ],
)
async def test_introspection_follows_the_setting(settings, env, setting, allowed):
    from pydantic import SecretStr

    from inventory.config import Environment
    from inventory.main import create_app

    app = create_app(
        settings.model_copy(
            update={
                "env": Environment(env),
                "graphql_introspection": setting,
                "secret_key": SecretStr("k" * 40),
            }
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            body = (await http.post("/graphql", json={"query": INTROSPECT})).json()
    if allowed:
        assert body["data"]["__schema"]["queryType"]["name"] == "Query"
    else:
        assert body.get("data") is None
        assert "introspection" in body["errors"][0]["message"].lower()

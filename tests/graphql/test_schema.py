"""GraphQL over the same services: auth codes, batching, parity with REST, typed errors, limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import event

from inventory.models import Role
from tests.helpers import API, collect_pages, create, create_product


async def gql(
    http: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None, **variables: Any
) -> dict[str, Any]:
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_no_token_is_unauthenticated_and_gives_no_data(anonymous, accounts):
    body = await gql(anonymous, "{ products { edges { node { sku } } } }")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    me = await gql(anonymous, "{ me { email role } }", accounts[Role.viewer].headers)
    assert me["data"]["me"] == {"email": "viewer@example.com", "role": "viewer"}


RECORD = """
mutation($input: RecordMovementInput!) {
  recordMovement(input: $input) {
    __typename
    ... on Movement { id kind quantity product { sku } }
    ... on InsufficientStock { message available requested }
    ... on NotFound { message }
    ... on ValidationFailed { message errors { loc msg } }
  }
}
"""


@pytest.fixture
async def stocked(client) -> dict[str, str]:
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "G-1")
    await client.post(
        f"{API}/stock/movements",
        json={
            "product_id": product["id"],
            "warehouse_id": warehouse["id"],
            "kind": "receipt",
            "quantity": 5,
        },
    )
    return {"productId": str(product["id"]), "warehouseId": str(warehouse["id"])}


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.viewer, False), (Role.clerk, True), (Role.manager, True), (Role.admin, True)],
)
async def test_record_movement_roles(anonymous, accounts, stocked, role, allowed):
    body = await gql(
        anonymous,
        RECORD,
        accounts[role].headers,
        input=stocked | {"kind": "RECEIPT", "quantity": 1},
    )
    if allowed:
        assert body["data"]["recordMovement"]["__typename"] == "Movement"
    else:
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_mutations_refuse_exactly_what_rest_refuses(client, stocked):
    before = await collect_pages(client, f"{API}/stock/movements")
    oversell = await gql(client, RECORD, input=stocked | {"kind": "SHIPMENT", "quantity": 6})
    assert oversell["data"]["recordMovement"] == {
        "__typename": "InsufficientStock",
        "message": oversell["data"]["recordMovement"]["message"],
        "available": 5,
        "requested": 6,
    }
    zero = await gql(client, RECORD, input=stocked | {"kind": "ADJUSTMENT", "quantity": 0})
    assert zero["data"]["recordMovement"]["__typename"] == "ValidationFailed"
    assert zero["data"]["recordMovement"]["errors"][0]["loc"] == ["input", "quantity"]
    missing = await gql(
        client, RECORD, input=stocked | {"productId": "99999", "kind": "RECEIPT", "quantity": 1}
    )
    assert missing["data"]["recordMovement"]["__typename"] == "NotFound"
    assert await collect_pages(client, f"{API}/stock/movements") == before
    shipped = await gql(client, RECORD, input=stocked | {"kind": "SHIPMENT", "quantity": 5})
    assert shipped["data"]["recordMovement"]["quantity"] == -5
    assert shipped["data"]["recordMovement"]["product"] == {"sku": "G-1"}


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
    # The caller, products, categories, suppliers, levels with their warehouses;
    # the same five for 3 products or 40.
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 5, selects


async def test_products_match_rest_for_the_same_filters(client):
    tools = await create(client, "/categories", name="Tools")
    for sku, active in (("A-1", True), ("B-2", False), ("C-3", True)):
        await create_product(client, sku, category_id=tools["id"], is_active=active)
    rest = await collect_pages(client, f"{API}/products", is_active="true")
    body = await gql(
        client,
        """query($f: ProductFilter) { products(filter: $f) { edges { node {
        id sku name unitPrice reorderLevel isActive version categoryId } } } }""",
        f={"isActive": True},
    )
    graph = [e["node"] for e in body["data"]["products"]["edges"]]
    assert graph == [
        {
            "id": str(p["id"]),
            "sku": p["sku"],
            "name": p["name"],
            "unitPrice": p["unit_price"],
            "reorderLevel": p["reorder_level"],
            "isActive": p["is_active"],
            "version": p["version"],
            "categoryId": str(p["category_id"]),
        }
        for p in rest
    ]


async def test_pages_follow_the_rest_cursors(client):
    for n in range(5):
        await create_product(client, f"P-{n}")
    first = await gql(
        client,
        "{ products(first: 2) { edges { node { sku } cursor } "
        "pageInfo { hasNextPage endCursor } } }",
    )
    page = first["data"]["products"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await client.get(
        f"{API}/products", params={"limit": 2, "cursor": page["pageInfo"]["endCursor"]}
    )
    assert [p["sku"] for p in rest.json()["items"]] == ["P-2", "P-3"]


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


async def test_a_bad_cursor_is_an_error_with_a_code(client):
    body = await gql(client, '{ products(after: "garbage") { edges { node { sku } } } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


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
        "/graphql", json={"query": "{ categories { name } }"}, headers={"X-Request-ID": "rid-7"}
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

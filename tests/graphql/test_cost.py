"""The GraphQL cost limit: estimated before anything runs, refused over the budget, reported
on every answer.

Each expected cost is worked out by hand next to its query, so a change in the rule
(``graphql_schema/cost.py``) fails here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import parse
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from graphql_schema import cost
from graphql_schema.context import Context
from graphql_schema.schema import build_schema
from inventory.config import Settings
from inventory.main import create_app
from inventory.models import Role
from tests.conftest import Account
from tests.graphql.helpers import gql
from tests.helpers import API, create, create_product, receive_stock

NESTED = (
    "products(first: 200) { edges { node { stockLevels { product { stockLevels { product {"
    " stockLevels { quantity } } } } } } } }"
)
ALIASED = "{ " + " ".join(f"a{n}: {NESTED}" for n in range(30)) + " }"
# Inside out, with 50 levels a product (cost.LIST_SIZES) and 200 products a page:
#   stockLevels { quantity }            1 + 50 * 1      =         51
#   product { … }                       1 + 51          =         52
#   stockLevels { product { … } }       1 + 50 * 52     =      2,601
#   product { … }                       1 + 2,601       =      2,602
#   stockLevels { … }                   1 + 50 * 2,602  =    130,101
#   node { … }                          1 + 130,101     =    130,102
#   edges { … }                         1 + 200 * 130,102 = 26,020,401
#   products(first: 200) { … }          1 + 26,020,401  = 26,020,402
# and 30 aliases of it.
ALIASED_COST = 30 * 26_020_402

PAGE = """
{ products(first: 50) {
    edges { node { sku name unitPrice stockLevels { warehouseId quantity reorderLevel } } }
    pageInfo { hasNextPage }
} }
"""
# A level: 3 fields. A node: itself, 3 fields, stockLevels (1 + 50 levels * 3 = 151): 155.
# edges: 1 + 50 nodes * 155 = 7,751; products: 1 + 7,751; pageInfo { hasNextPage }: 2.
PAGE_COST = 1 + (1 + 50 * (1 + 3 + (1 + 50 * 3))) + 2
assert PAGE_COST == 7_754


async def test_thirty_aliased_nested_pages_are_refused_before_any_sql(
    client, viewer, engine: AsyncEngine, settings
):
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "C-1")
    await receive_stock(client, product["id"], warehouse["id"], 5)
    # The viewer's first request: not even the sign-in's read of the user runs, as
    # the refusal comes before any resolver and so before any permission check.
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        started = time.perf_counter()
        body = await gql(viewer, ALIASED)
        elapsed = time.perf_counter() - started
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert statements == []
    assert body["data"] is None
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COSTLY",
        "cost": ALIASED_COST,
        "maxCost": settings.graphql_max_cost,
    }
    assert settings.graphql_max_cost == 25_000
    assert f"{ALIASED_COST}" in error["message"]
    assert body["extensions"] == {"cost": ALIASED_COST}
    assert elapsed < 1.0  # "well under a second"; it takes milliseconds


async def test_a_page_of_fifty_products_with_levels_passes_and_reports_its_cost(client, viewer):
    warehouses = [
        await create(client, "/warehouses", code=f"W{n}", name=f"Warehouse {n}") for n in range(2)
    ]
    for n in range(51):
        product = await create_product(client, f"P-{n:03d}")
        for warehouse in warehouses:
            await receive_stock(client, product["id"], warehouse["id"], n + 1)
    body = await gql(viewer, PAGE)
    assert "errors" not in body, body
    assert body["extensions"] == {"cost": PAGE_COST}
    edges = body["data"]["products"]["edges"]
    assert len(edges) == 50
    assert [level["quantity"] for level in edges[1]["node"]["stockLevels"]] == [2, 2]
    assert body["data"]["products"]["pageInfo"] == {"hasNextPage": True}


VARIABLE_PAGE = "query($n: Int) { products(first: $n) { edges { node { sku } } } }"


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"n": 10}, 1 + (1 + 10 * (1 + 1))),
        ({"n": None}, 1 + (1 + 50 * (1 + 1))),  # left to its default, REST's 50
        ({}, 1 + (1 + 50 * (1 + 1))),
    ],
)
async def test_a_page_size_in_a_variable_is_what_is_counted(viewer, variables, expected):
    body = await gql(viewer, VARIABLE_PAGE, **variables)
    assert "errors" not in body, body
    assert body["extensions"] == {"cost": expected}


async def test_a_variables_default_is_counted_when_it_is_not_sent(viewer):
    query = "query($n: Int = 5) { warehouses(first: $n) { edges { cursor node { code } } } }"
    body = await gql(viewer, query)
    assert body["extensions"] == {"cost": 1 + (1 + 5 * (1 + 1 + 1))}


FRAGMENTS = """
query { products(first: 20) { edges { node { ...Row } } pageInfo { ...More } } }
fragment Row on Product { __typename sku ... on Product { stockLevels { quantity } } }
fragment More on PageInfo { hasNextPage endCursor }
"""


async def test_named_and_inline_fragments_count_and_typename_is_free(viewer):
    body = await gql(viewer, FRAGMENTS)
    assert "errors" not in body, body
    # A node: itself, sku, stockLevels (1 + 50 * 1); __typename nothing.
    # products + edges (1 + 20 * 53) + pageInfo with its 2 fields.
    assert body["extensions"] == {"cost": 1 + (1 + 20 * (1 + 1 + (1 + 50 * 1))) + 3}


async def test_aliases_count_as_written(viewer):
    body = await gql(viewer, "{ a: me { email } b: me { email } c: me { id email role } }")
    assert body["extensions"] == {"cost": 2 + 2 + 4}


MUTATION = """
mutation($name: String!) {
  createCategory(input: {name: $name}) {
    __typename ... on Category { id name } ... on Conflict { message }
  }
}
"""


async def test_a_mutation_gets_a_cost(client):
    body = await gql(client, MUTATION, name="Tools")
    assert body["data"]["createCategory"]["name"] == "Tools"
    # The field, and every fragment's fields as if each applied (__typename free).
    assert body["extensions"] == {"cost": 1 + 2 + 1}


async def test_errors_carry_a_cost_too(anonymous, viewer):
    refused = await gql(anonymous, "{ products(first: 3) { edges { node { sku } } } }")
    assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert refused["extensions"] == {"cost": 1 + (1 + 3 * 2)}
    invalid = await gql(viewer, "{ nope }")
    assert invalid["data"] is None
    assert invalid["extensions"] == {"cost": 0}  # refused by validation: never estimated


async def test_introspection_costs_one_a_root(viewer):
    body = await gql(viewer, "{ __schema { types { name fields { name type { name } } } } }")
    assert "errors" not in body, body
    assert body["extensions"] == {"cost": 1}


@pytest.mark.parametrize("first", [-1, 0, 201, 1_000_000])
async def test_a_bad_page_size_keeps_its_validation_error(viewer, first):
    literal = await gql(viewer, f"{{ products(first: {first}) {{ edges {{ node {{ sku }} }} }} }}")
    variable = await gql(viewer, VARIABLE_PAGE, n=first)
    for body in (literal, variable):
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
        # Counted as the largest page until the resolver refuses it.
        assert body["extensions"] == {"cost": 1 + (1 + 200 * 2)}


async def test_a_page_size_that_is_no_number_keeps_its_error(viewer):
    body = await gql(viewer, VARIABLE_PAGE, n="ten")
    assert body["data"] is None
    assert "Int" in body["errors"][0]["message"]
    assert body["extensions"] == {"cost": 1 + (1 + 200 * 2)}


@pytest.fixture
async def small_budget(
    settings: Settings, accounts: dict[Role, Account]
) -> AsyncIterator[httpx.AsyncClient]:
    """A manager's client of an app whose GraphQL budget is 100."""
    prefix = f"{settings.redis_key_prefix}:{uuid.uuid4().hex[:8]}"
    app = create_app(
        settings.model_copy(update={"redis_key_prefix": prefix, "graphql_max_cost": 100})
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


async def test_a_small_budget_refuses_a_normal_query(small_budget):
    body = await gql(small_budget, PAGE)
    assert body["data"] is None
    assert [e["extensions"] for e in body["errors"]] == [
        {"code": "QUERY_TOO_COSTLY", "cost": PAGE_COST, "maxCost": 100}
    ]
    small = await gql(small_budget, "{ products(first: 10) { edges { node { sku } } } }")
    assert "errors" not in small, small
    assert small["extensions"] == {"cost": 22}


CREATE_WITH_LEVELS = """
mutation {
  createProduct(input: {sku: "M-1", name: "M", unitPrice: "1.00"}) {
    ... on Product { sku stockLevels { quantity warehouse { code } } }
  }
}
"""


async def test_a_mutation_over_the_budget_writes_nothing(small_budget):
    body = await gql(small_budget, CREATE_WITH_LEVELS)
    assert body["data"] is None
    # createProduct, sku, stockLevels (1 + 50 levels * (quantity + warehouse { code })).
    assert [e["extensions"] for e in body["errors"]] == [
        {"code": "QUERY_TOO_COSTLY", "cost": 1 + 1 + (1 + 50 * 3), "maxCost": 100}
    ]
    listed = (await small_budget.get(f"{API}/products")).json()
    assert listed["items"] == []


async def test_a_subscription_is_estimated_too(app, settings, accounts):
    tight = settings.model_copy(update={"graphql_max_cost": 1})
    context = Context(
        database=app.state.db,
        settings=tight,
        feed=app.state.change_feed,
        remembered=app.state.cache,
        transaction=None,
        handshake_token=accounts[Role.viewer].token,
    )
    stream = await build_schema(tight).subscribe(
        "subscription { stockChanged { productId quantity } }", context_value=context
    )
    results = [result async for result in stream]
    assert [(e.extensions, r.extensions) for r in results for e in r.errors or []] == [
        ({"code": "QUERY_TOO_COSTLY", "cost": 3, "maxCost": 1}, {"cost": 3})
    ]


def test_every_list_of_objects_has_a_declared_size():
    schema = build_schema(Settings(env="test"))._schema
    assert cost.list_fields_without_size(schema) == []


def test_fragments_that_spread_each_other_are_estimated_once_each():
    """Ten fragments each spreading the next twenty times: 20**10 paths, which a walk of
    every path would never finish; each fragment is estimated once."""
    levels = [f"fragment F{n} on Query {{ {' '.join([f'...F{n + 1}'] * 20)} }}" for n in range(10)]
    document = parse("{ ...F0 }\n" + "\n".join(levels) + "\nfragment F10 on Query { me { id } }")
    schema = build_schema(Settings(env="test"))._schema
    assert cost.estimate(schema, document) == 20**10 * 2


def fragment_bomb(levels: int, spreads: int, leaf: str) -> str:
    """Fragments that each spread the next ``spreads`` times: ``spreads ** levels`` leaves."""
    chain = [
        f"fragment F{n} on Query {{ {' '.join([f'...F{n + 1}'] * spreads)} }}"
        for n in range(levels)
    ]
    return "\n".join(["{ ...F0 }", *chain, f"fragment F{levels} on Query {{ {leaf} }}"])


@pytest.mark.parametrize("leaf", ["me { id }", "__typename"])
async def test_fragments_spread_out_past_the_limit_are_refused_before_validation(anonymous, leaf):
    """A few hundred tokens that spread out to 1.7 million selections.

    The depth and alias limits would walk every one of them (seconds of the event
    loop); even the free ``__typename`` is refused, and without a token.
    """
    body = await gql(anonymous, fragment_bomb(8, 6, leaf))
    assert body["data"] is None
    assert [e["extensions"] for e in body["errors"]] == [{"code": "QUERY_TOO_COMPLEX"}]
    assert "over the limit of 5000" in body["errors"][0]["message"]
    assert body["extensions"] == {"cost": 0}


async def test_fragments_within_the_limit_are_validated_and_estimated(viewer):
    body = await gql(viewer, fragment_bomb(3, 6, "me { id }"))
    assert "errors" not in body, body
    assert body["extensions"] == {"cost": 6**3 * 2}


def test_a_fragment_cycle_is_counted_without_looping():
    document = parse("{ ...X } fragment X on Query { ...Y } fragment Y on Query { ...X me { id } }")
    # ...X, then X's ...Y, then Y's ...X (already being counted) and me { id }.
    assert cost.expanded_size(document) == 5

"""GraphQL ``products(sort:)`` pages exactly as REST's ``?sort=``, with the same cursors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from graphql_schema.types import ProductSort as GraphQLProductSort
from inventory.products.filters import ProductSort
from tests.graphql.helpers import PRODUCT, assert_same_page, gql
from tests.helpers import API, create_product

SORTED = f"""query($sort: ProductSort!, $first: Int, $after: String) {{
  products(sort: $sort, first: $first, after: $after) {{
    edges {{ cursor node {{ {PRODUCT} }} }}
    pageInfo {{ hasNextPage endCursor }} }} }}"""

# Names that differ only in case or tie exactly, made out of order.
NAMES = ["Foxtrot", "bravo", "alpha", "Alpha", "ALPHA", "Bravo two", "bravo", "Charlie", "zulu"]
BY_NAME = ["alpha", "Alpha", "ALPHA", "bravo", "bravo", "Bravo two", "Charlie", "Foxtrot", "zulu"]


@pytest.fixture
async def named(client: httpx.AsyncClient) -> None:
    for number, name in enumerate(NAMES):
        await create_product(client, f"S-{number}", name=name)


async def pages_as_rest(
    client: httpx.AsyncClient, sort: GraphQLProductSort, first: int
) -> list[dict[str, Any]]:
    """Every page of ``products(sort:)`` beside REST's page with the same sort and cursor."""
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        body = await gql(client, SORTED, sort=sort.name, first=first, after=after)
        assert "errors" not in body, body
        page = body["data"]["products"]
        params = {"sort": sort.value, "limit": first} | ({"cursor": after} if after else {})
        by_rest = await client.get(f"{API}/products", params=params)
        assert by_rest.status_code == 200, by_rest.text
        expected = by_rest.json()
        assert_same_page(page, expected)
        items += expected["items"]
        after = page["pageInfo"]["endCursor"]
        if after is None:
            return items


@pytest.mark.parametrize("first", [1, 2, 4])
@pytest.mark.parametrize("sort", list(GraphQLProductSort), ids=lambda s: s.name)
async def test_products_sort_pages_as_rest(client, named, sort, first):
    items = await pages_as_rest(client, sort, first)
    assert len(items) == len(NAMES)
    if sort is GraphQLProductSort.NAME:
        assert [p["name"] for p in items] == BY_NAME
        ties = [p["id"] for p in items if p["name"] == "bravo"]
        assert ties == sorted(ties), "equal names go by id"


async def test_products_are_sorted_by_sku_when_no_sort_is_given(client, named):
    body = await gql(client, "{ products(first: 50) { edges { node { sku } } } }")
    skus = [e["node"]["sku"] for e in body["data"]["products"]["edges"]]
    assert skus == sorted(skus)


def test_graphql_sort_offers_every_rest_sort():
    assert [s.value for s in GraphQLProductSort] == [s.value for s in ProductSort]

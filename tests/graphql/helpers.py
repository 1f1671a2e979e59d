"""Calling GraphQL in tests, and reading its answers in REST's terms for comparison."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from tests.helpers import API, collect_pages

# Every REST field of each type, by its GraphQL name: asking for all of them lets
# a test compare whole objects with REST's.
CATEGORY = "id name description createdAt updatedAt"
SUPPLIER = "id name email phone createdAt updatedAt"
WAREHOUSE = "id code name address isActive createdAt updatedAt"
PRODUCT = (
    "id sku name description categoryId supplierId unitPrice reorderLevel isActive version "
    "createdAt updatedAt"
)
LEVEL = "productId warehouseId quantity reserved available onOrder reorderLevel updatedAt"
MOVEMENT = (
    "id productId warehouseId kind quantity balance reference note unitCost userId transferId"
    " createdAt"
)
RESERVATION = (
    "id status reference expiresAt createdAt lines { productId warehouseId quantity } movementIds"
    " salesOrderId"
)


@dataclass(frozen=True)
class Listing:
    """A GraphQL connection and the REST list it pages through with the same cursors."""

    field: str
    path: str
    fields: str
    filter_type: str | None = None

    @property
    def query(self) -> str:
        """One page: every edge's cursor and whole node, and ``pageInfo``."""
        params, args = "$first: Int, $after: String", "first: $first, after: $after"
        if self.filter_type:
            params, args = f"$f: {self.filter_type}, {params}", f"filter: $f, {args}"
        edges = f"edges {{ cursor node {{ {self.fields} }} }}"
        page_info = "pageInfo { hasNextPage endCursor }"
        return f"query({params}) {{ {self.field}({args}) {{ {edges} {page_info} }} }}"


LISTINGS = {
    listing.field: listing
    for listing in [
        Listing("products", "products", PRODUCT, "ProductFilter"),
        Listing("categories", "categories", CATEGORY),
        Listing("suppliers", "suppliers", SUPPLIER),
        Listing("warehouses", "warehouses", WAREHOUSE),
        Listing("stockLevels", "stock", LEVEL, "StockLevelFilter"),
        Listing("movements", "stock/movements", MOVEMENT, "MovementFilter"),
    ]
}
RESERVATIONS = Listing("reservations", "reservations", RESERVATION, "ReservationFilter")
"""Not among LISTINGS: its pages need holds made first (tests/reservations/test_graphql.py)."""


async def gql(
    http: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None, **variables: Any
) -> dict[str, Any]:
    """POST one operation; the HTTP answer is 200 whether or not the operation failed."""
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _comparable(name: str, value: Any) -> Any:
    if name.endswith("_at") and isinstance(value, str):
        # REST writes "…Z", GraphQL "…+00:00": compare the instants.
        return datetime.fromisoformat(value)
    return value


def as_rest(node: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL object as REST writes it: snake_case names, integer ids, lower-case kinds."""
    out = {}
    for key, value in node.items():
        name = _snake(key)
        if (name == "id" or name.endswith("_id")) and isinstance(value, str) and value.isdigit():
            value = int(value)
        elif name == "kind" and isinstance(value, str):
            value = value.lower()
        out[name] = _comparable(name, value)
    return out


def rest(item: dict[str, Any]) -> dict[str, Any]:
    """A REST object with its timestamps as instants, to compare with ``as_rest``."""
    return {name: _comparable(name, value) for name, value in item.items()}


def assert_same_page(page: dict[str, Any], expected: dict[str, Any]) -> None:
    """A GraphQL connection page holds REST's page: the same items, cursor and end."""
    assert [as_rest(e["node"]) for e in page["edges"]] == [rest(x) for x in expected["items"]]
    assert page["pageInfo"] == {
        "hasNextPage": expected["next_cursor"] is not None,
        "endCursor": expected["next_cursor"],
    }
    if expected["next_cursor"] is not None:
        assert page["edges"][-1]["cursor"] == expected["next_cursor"]


def rest_loc(loc: list[Any]) -> list[str]:
    """A REST error location in GraphQL terms: the body is the ``input`` argument."""
    head, *fields = loc
    camel = [re.sub(r"_([a-z])", lambda m: m.group(1).upper(), str(f)) for f in fields]
    return ["input" if head == "body" else str(head), *camel]


async def everything(client: httpx.AsyncClient) -> dict[str, list[dict[str, Any]]]:
    """Every list REST serves: a test compares two of these to see what a call wrote."""
    paths = [
        "categories",
        "suppliers",
        "warehouses",
        "products",
        "stock",
        "stock/movements",
        "counts",
        "purchase-orders",
        "sales-orders",
    ]
    return {path: await collect_pages(client, f"{API}/{path}") for path in paths}

"""Sales orders over GraphQL answer what REST answers: the same orders, allocations,
shipments, cancellations and refusals, and the same lists page by page."""

from __future__ import annotations

from typing import Any

from tests.graphql.helpers import as_rest, assert_same_page, gql, rest
from tests.helpers import API, assert_problem
from tests.sales_orders.conftest import ORDERS, done, figures, level, line, new_order

LINE = "id productId warehouseId quantity allocated shipped unitPrice backordered"
ORDER = f"id number status customerReference lines {{ {LINE} }} createdAt confirmedAt closedAt"
RESULT = f"""
    __typename
    ... on SalesOrder {{ {ORDER} }}
    ... on InvalidTransition {{ message currentStatus }}
    ... on NotAllocated {{ message errors {{ loc allocated requested }} }}
    ... on InsufficientStock {{ message available requested }}
    ... on NotFound {{ message }}
    ... on Conflict {{ message }}
    ... on ValidationFailed {{ message errors {{ loc msg type }} }}
"""
CREATE = f"""mutation($input: CreateSalesOrderInput!) {{
    createSalesOrder(input: $input) {{ {RESULT} }} }}"""
SHIP = f"""mutation($id: ID!, $input: ShipSalesOrderInput!) {{
    shipSalesOrder(id: $id, input: $input) {{ {RESULT} }} }}"""
STEPS = {
    name: f"mutation($id: ID!) {{ {name}SalesOrder(id: $id) {{ {RESULT} }} }}"
    for name in ("confirm", "allocate", "cancel")
}
ONE = f"query($id: ID!) {{ salesOrder(id: $id) {{ {ORDER} }} }}"
PAGE = f"""query($f: SalesOrderFilter, $first: Int, $after: String) {{
    salesOrders(filter: $f, first: $first, after: $after) {{
        edges {{ cursor node {{ {ORDER} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""


def as_order(node: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL sales order as REST writes it (timestamps as instants)."""
    order = as_rest({k: v for k, v in node.items() if k not in ("__typename", "lines")})
    order["status"] = order["status"].lower()
    order["lines"] = [as_rest(ln) for ln in node["lines"]]
    return order


def gql_line(product_id: int, warehouse_id: int, quantity: int, **extra: Any) -> dict[str, Any]:
    return {
        "productId": str(product_id),
        "warehouseId": str(warehouse_id),
        "quantity": quantity,
        **extra,
    }


async def mutate(client: Any, name: str, order_id: int | str) -> dict[str, Any]:
    body = await gql(client, STEPS[name], id=str(order_id))
    assert "errors" not in body, body
    answer: dict[str, Any] = body["data"][f"{name}SalesOrder"]
    return answer


async def ship(client: Any, order_id: int | str, *lines: tuple[int, int]) -> dict[str, Any]:
    shipped = [{"lineId": str(i), "quantity": q} for i, q in lines]
    body = await gql(client, SHIP, id=str(order_id), input={"lines": shipped})
    assert "errors" not in body, body
    answer: dict[str, Any] = body["data"]["shipSalesOrder"]
    return answer


async def test_every_step_answers_as_rest_does(client, world):
    created = await gql(
        client,
        CREATE,
        input={
            "customerReference": "ACME-9",
            "lines": [
                gql_line(world["bolt"], world["main"], 12),
                gql_line(world["nut"], world["main"], 2, unitPrice="0.40"),
            ],
        },
    )
    order = created["data"]["createSalesOrder"]
    assert order["__typename"] == "SalesOrder", order
    by_rest = await new_order(
        client,
        line(world["bolt"], world["east"], 1),
        customer_reference="ACME-10",
    )
    assert (order["number"], by_rest["number"]) == ("SO-000001", "SO-000002")
    stored = (await client.get(f"{ORDERS}/{order['id']}")).json()
    assert as_order(order) == rest(stored)
    assert stored["lines"][0]["unit_price"] == "2.50"
    bolts, nuts = (int(ln["id"]) for ln in order["lines"])

    confirmed = await mutate(client, "confirm", order["id"])
    assert as_order(confirmed) == rest((await client.get(f"{ORDERS}/{order['id']}")).json())
    assert figures(as_order(confirmed)) == [(12, 10, 0), (2, 2, 0)]

    partly = await ship(client, order["id"], (bolts, 4))
    assert partly["status"] == "PARTIALLY_SHIPPED"
    assert figures(as_order(partly)) == [(12, 10, 4), (2, 2, 0)]
    movements = (await client.get(f"{API}/stock/movements", params={"kind": "shipment"})).json()
    assert [m["reference"] for m in movements["items"]] == ["SO-000001"]

    received = await client.post(
        f"{API}/stock/movements",
        json={
            "product_id": world["bolt"],
            "warehouse_id": world["main"],
            "kind": "receipt",
            "quantity": 2,
        },
    )
    assert received.status_code == 201
    topped = await mutate(client, "allocate", order["id"])
    assert figures(as_order(topped)) == [(12, 12, 4), (2, 2, 0)]

    shipped = await ship(client, order["id"], (bolts, 8), (nuts, 2))
    assert shipped["status"] == "SHIPPED"
    assert as_order(shipped) == rest((await client.get(f"{ORDERS}/{order['id']}")).json())

    cancelled = await mutate(client, "cancel", by_rest["id"])
    assert cancelled["status"] == "CANCELLED"
    one = await gql(client, ONE, id=str(by_rest["id"]))
    assert as_order(one["data"]["salesOrder"]) == rest(
        (await client.get(f"{ORDERS}/{by_rest['id']}")).json()
    )
    assert (await gql(client, ONE, id="999999"))["data"] == {"salesOrder": None}


async def test_lists_page_and_filter_as_rest_does(client, world):
    made = [await new_order(client, line(world["nut"], world["main"], 1)) for _ in range(3)]
    await done(client, made[1]["id"], "confirm")
    pages = [({}, {}), ({"status": "CONFIRMED"}, {"status": "confirmed"})]
    for gql_filter, rest_filter in pages:
        after = None
        while True:
            expected = (
                await client.get(
                    ORDERS,
                    params={"limit": 2, **rest_filter, **({"cursor": after} if after else {})},
                )
            ).json()
            body = await gql(client, PAGE, f=gql_filter or None, first=2, after=after)
            assert "errors" not in body, body
            assert_same_page(
                {
                    "edges": [
                        {"cursor": e["cursor"], "node": as_order(e["node"])}
                        for e in body["data"]["salesOrders"]["edges"]
                    ],
                    "pageInfo": body["data"]["salesOrders"]["pageInfo"],
                },
                expected,
            )
            after = expected["next_cursor"]
            if after is None:
                break


async def test_refusals_are_typed_as_rest_refuses_them(client, world):
    order = await new_order(
        client, line(world["bolt"], world["main"], 12), line(world["nut"], world["main"], 1)
    )
    bolts, nuts = (ln["id"] for ln in order["lines"])

    early = await ship(client, order["id"], (bolts, 1))
    assert early["__typename"] == "InvalidTransition"
    assert early["currentStatus"] == "draft"
    await mutate(client, "confirm", order["id"])
    again = await mutate(client, "confirm", order["id"])
    assert (again["__typename"], again["currentStatus"]) == ("InvalidTransition", "confirmed")
    by_rest = await client.post(f"{ORDERS}/{order['id']}/confirm")
    assert assert_problem(by_rest, 409)["detail"] == again["message"]

    short = await ship(client, order["id"], (nuts, 1), (bolts, 11))
    assert short["__typename"] == "NotAllocated"
    assert short["errors"] == [{"loc": ["input", "lines", "1"], "allocated": 10, "requested": 11}]
    unknown = await ship(client, order["id"], (999, 1))
    assert unknown["__typename"] == "ValidationFailed"
    assert [e["loc"] for e in unknown["errors"]] == [["input", "lines", "0", "lineId"]]
    zero = await ship(client, order["id"], (bolts, 0))
    assert [e["loc"] for e in zero["errors"]] == [["input", "lines", "0", "quantity"]]
    assert figures((await client.get(f"{ORDERS}/{order['id']}")).json()) == [
        (12, 10, 0),
        (1, 1, 0),
    ]
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 10,
        "reserved": 10,
        "available": 0,
    }

    missing = await gql(client, CREATE, input={"lines": [gql_line(999, world["main"], 1)]})
    assert missing["data"]["createSalesOrder"]["__typename"] == "ValidationFailed"
    await client.patch(f"{API}/products/{world['nut']}", json={"is_active": False})
    inactive = await gql(
        client, CREATE, input={"lines": [gql_line(world["nut"], world["main"], 1)]}
    )
    assert inactive["data"]["createSalesOrder"]["__typename"] == "Conflict"
    empty = await gql(client, CREATE, input={"lines": []})
    assert empty["data"]["createSalesOrder"]["__typename"] == "ValidationFailed"
    gone = await mutate(client, "cancel", "999999")
    assert gone["__typename"] == "NotFound"
    assert len((await client.get(ORDERS)).json()["items"]) == 1

"""Purchase orders over GraphQL answer what REST answers: the same orders, stock effects,
refusals (OverReceipt, InvalidTransition, ValidationFailed, NotFound) and lists, page by
page with the same cursors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.graphql.helpers import gql, rest, rest_loc
from tests.helpers import assert_problem, collect_pages, create
from tests.purchase_orders.conftest import ORDERS, levels, order_body, receipts_of

LINE = "id productId quantity unitCost received open"
ORDER = (
    f"id number status supplierId warehouseId reference expectedOn placedAt closedAt "
    f"createdAt updatedAt lines {{ {LINE} }}"
)
RESULT = f"""
    __typename
    ... on PurchaseOrder {{ {ORDER} }}
    ... on OverReceipt {{ message errors {{ loc open requested }} }}
    ... on InvalidTransition {{ message currentStatus }}
    ... on NotFound {{ message }}
    ... on Conflict {{ message }}
    ... on ValidationFailed {{ message errors {{ loc msg type }} }}
"""
CREATE = f"""mutation($input: CreatePurchaseOrderInput!) {{
    createPurchaseOrder(input: $input) {{ {RESULT} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: UpdatePurchaseOrderInput!) {{
    updatePurchaseOrder(id: $id, input: $input) {{ {RESULT} }} }}"""
PLACE = f"mutation($id: ID!) {{ placePurchaseOrder(id: $id) {{ {RESULT} }} }}"
RECEIVE = f"""mutation($id: ID!, $input: ReceivePurchaseOrderInput!) {{
    receivePurchaseOrder(id: $id, input: $input) {{ {RESULT} }} }}"""
CANCEL = f"mutation($id: ID!) {{ cancelPurchaseOrder(id: $id) {{ {RESULT} }} }}"
ONE = f"query($id: ID!) {{ purchaseOrder(id: $id) {{ {ORDER} }} }}"
LIST = f"""query($f: PurchaseOrderFilter, $first: Int, $after: String) {{
    purchaseOrders(filter: $f, first: $first, after: $after) {{
        edges {{ cursor node {{ {ORDER} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""


def as_rest(node: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL purchase order as REST writes it (timestamps as instants, for ``rest``)."""
    return rest(
        {
            "id": int(node["id"]),
            "number": node["number"],
            "status": node["status"].lower(),
            "supplier_id": int(node["supplierId"]),
            "warehouse_id": int(node["warehouseId"]),
            "reference": node["reference"],
            "expected_on": node["expectedOn"],
            "placed_at": node["placedAt"],
            "closed_at": node["closedAt"],
            "created_at": node["createdAt"],
            "updated_at": node["updatedAt"],
            "lines": [
                {
                    "id": int(line["id"]),
                    "product_id": int(line["productId"]),
                    "quantity": line["quantity"],
                    "unit_cost": line["unitCost"],
                    "received": line["received"],
                    "open": line["open"],
                }
                for line in node["lines"]
            ],
        }
    )


def gql_order(body: dict[str, Any]) -> dict[str, Any]:
    """A REST order body as GraphQL's input."""
    names = {
        "supplier_id": "supplierId",
        "warehouse_id": "warehouseId",
        "reference": "reference",
        "expected_on": "expectedOn",
    }
    out: dict[str, Any] = {
        names[k]: str(v) if k.endswith("_id") else v for k, v in body.items() if k in names
    }
    if "lines" in body:
        out["lines"] = [
            {
                "productId": str(ln["product_id"]),
                "quantity": ln["quantity"],
                "unitCost": ln["unit_cost"],
            }
            for ln in body["lines"]
        ]
    return out


async def mutate(client: httpx.AsyncClient, document: str, **variables: Any) -> dict[str, Any]:
    body = await gql(client, document, **variables)
    assert "errors" not in body, body
    [answer] = body["data"].values()
    assert isinstance(answer, dict)
    return answer


def same_order(by_graphql: dict[str, Any], by_rest: dict[str, Any]) -> None:
    """Two orders made of the same requests: equal but for ids, numbers and timestamps."""

    def shape(order: dict[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in order.items() if k not in {"id", "number"}}
        kept = {k: v for k, v in kept.items() if not k.endswith("_at")}
        kept["lines"] = [{k: v for k, v in ln.items() if k != "id"} for ln in order["lines"]]
        return kept

    assert shape(as_rest(by_graphql)) == shape(rest(by_rest))


async def test_every_step_answers_as_rest_and_moves_the_same_stock(client, world):
    body = order_body(
        world, ("bolt", 10, "2"), ("nut", 4, "0.125"), reference="Q-7", expected_on="2026-12-24"
    )
    by_graphql = await mutate(client, CREATE, input=gql_order(body))
    assert by_graphql["__typename"] == "PurchaseOrder", by_graphql
    by_rest = await client.post(ORDERS, json=body)
    assert by_rest.status_code == 201
    same_order(by_graphql, by_rest.json())
    assert (by_graphql["number"], by_rest.json()["number"]) == ("PO-000001", "PO-000002")
    stored = (await client.get(f"{ORDERS}/{by_graphql['id']}")).json()
    assert rest(stored) == as_rest(by_graphql)
    assert as_rest((await gql(client, ONE, id=by_graphql["id"]))["data"]["purchaseOrder"]) == (
        rest(stored)
    )
    assert (await gql(client, ONE, id="999999"))["data"] == {"purchaseOrder": None}

    change = {"reference": None, "lines": body["lines"][:1]}
    updated = await mutate(client, UPDATE, id=by_graphql["id"], input=gql_order(change))
    rest_updated = await client.patch(f"{ORDERS}/{by_rest.json()['id']}", json=change)
    same_order(updated, rest_updated.json())
    assert updated["reference"] is None
    assert len(updated["lines"]) == 1

    placed = await mutate(client, PLACE, id=by_graphql["id"])
    rest_placed = await client.post(f"{ORDERS}/{by_rest.json()['id']}/place")
    same_order(placed, rest_placed.json())
    assert placed["status"] == "PLACED"
    assert (await levels(client, world["main"]))[world["bolt"]] == {"quantity": 0, "on_order": 20}
    level = await gql(client, "{ stockLevels { edges { node { quantity onOrder } } } }")
    assert level["data"]["stockLevels"]["edges"] == [{"node": {"quantity": 0, "onOrder": 20}}]
    then = await gql(
        client,
        '{ stockLevels(asOf: "2999-01-01T00:00:00Z") { edges { node { onOrder } } } }',
    )
    assert "errors" not in then, then
    assert all(e["node"]["onOrder"] is None for e in then["data"]["stockLevels"]["edges"])

    receipt = {"lines": [{"lineId": placed["lines"][0]["id"], "quantity": 4}]}
    received = await mutate(client, RECEIVE, id=by_graphql["id"], input=receipt)
    rest_line = rest_placed.json()["lines"][0]["id"]
    rest_received = await client.post(
        f"{ORDERS}/{by_rest.json()['id']}/receive",
        json={"lines": [{"line_id": rest_line, "quantity": 4}]},
    )
    same_order(received, rest_received.json())
    assert received["status"] == "PARTIALLY_RECEIVED"
    assert received["lines"][0]["open"] == 6
    assert [e["quantity"] for e in await receipts_of(client, by_graphql["number"])] == [4]
    assert (await levels(client, world["main"]))[world["bolt"]] == {"quantity": 8, "on_order": 12}

    cancelled = await mutate(client, CANCEL, id=by_graphql["id"])
    rest_cancelled = await client.post(f"{ORDERS}/{by_rest.json()['id']}/cancel")
    same_order(cancelled, rest_cancelled.json())
    assert cancelled["status"] == "CANCELLED"
    assert (await levels(client, world["main"]))[world["bolt"]] == {"quantity": 8, "on_order": 0}


async def test_an_over_receipt_names_each_line_as_rest_does_and_receives_nothing(client, world):
    created = await mutate(
        client, CREATE, input=gql_order(order_body(world, ("bolt", 3, "1"), ("nut", 2, "1")))
    )
    placed = await mutate(client, PLACE, id=created["id"])
    bolt, nut = (line["id"] for line in placed["lines"])
    lines = [{"lineId": bolt, "quantity": 3}, {"lineId": nut, "quantity": 5}]
    refused = await mutate(client, RECEIVE, id=created["id"], input={"lines": lines})
    assert refused["__typename"] == "OverReceipt", refused
    assert refused["errors"] == [{"loc": ["input", "lines", "1"], "open": 2, "requested": 5}]
    by_rest = await client.post(
        f"{ORDERS}/{created['id']}/receive",
        json={
            "lines": [{"line_id": int(ln["lineId"]), "quantity": ln["quantity"]} for ln in lines]
        },
    )
    assert_problem(by_rest, 409)
    assert [{**e, "loc": rest_loc(e["loc"])} for e in by_rest.json()["errors"]] == refused["errors"]
    assert await receipts_of(client, created["number"]) == []
    assert (await levels(client, world["main"]))[world["nut"]] == {"quantity": 0, "on_order": 2}


@pytest.mark.parametrize(
    ("steps", "document", "status"),
    [
        ([], "receive", "DRAFT"),
        ([PLACE], PLACE, "PLACED"),
        ([PLACE], UPDATE, "PLACED"),
        ([CANCEL], CANCEL, "CANCELLED"),
    ],
)
async def test_an_illegal_step_is_an_invalid_transition_with_the_current_status(
    client, world, steps, document, status
):
    created = await mutate(client, CREATE, input=gql_order(order_body(world, ("bolt", 3, "1"))))
    for step in steps:
        assert (await mutate(client, step, id=created["id"]))["__typename"] == "PurchaseOrder"
    variables: dict[str, Any] = {"id": created["id"]}
    if document == "receive":
        document = RECEIVE
        variables["input"] = {"lines": [{"lineId": created["lines"][0]["id"], "quantity": 1}]}
    elif document == UPDATE:
        variables["input"] = {"reference": "late"}
    refused = await mutate(client, document, **variables)
    assert refused["__typename"] == "InvalidTransition", refused
    assert refused["currentStatus"] == status.lower()
    # REST refuses the same step of the same order with the same status.
    rest_step = {PLACE: "place", CANCEL: "cancel"}.get(document)
    if rest_step:
        answer = await client.post(f"{ORDERS}/{created['id']}/{rest_step}")
        assert assert_problem(answer, 409)["current_status"] == refused["currentStatus"]


@pytest.mark.parametrize(
    ("order", "line", "loc"),
    [
        ({"supplier_id": 999_999}, {}, ["input", "supplierId"]),
        ({}, {"quantity": 0}, ["input", "lines", "0", "quantity"]),
        ({}, {"unit_cost": "-1"}, ["input", "lines", "0", "unitCost"]),
        ({}, {"unit_cost": "0.00001"}, ["input", "lines", "0", "unitCost"]),
        ({}, {"product_id": 999_999}, ["input", "lines", "0", "productId"]),
        ({"lines": []}, {}, ["input", "lines"]),
    ],
)
async def test_bad_input_is_refused_where_rest_refuses_it(client, world, order, line, loc):
    body = order_body(world, ("bolt", 1, "1"))
    body["lines"] = [ln | line for ln in body["lines"]]
    body |= order
    refused = await mutate(client, CREATE, input=gql_order(body))
    assert refused["__typename"] == "ValidationFailed", refused
    assert loc in [e["loc"] for e in refused["errors"]]
    by_rest = await client.post(ORDERS, json=body)
    assert loc in [rest_loc(e["loc"]) for e in assert_problem(by_rest, 422)["errors"]]
    assert (await client.get(ORDERS)).json()["items"] == []


async def test_an_unknown_line_or_order_is_refused_as_rest_refuses_it(client, world):
    created = await mutate(client, CREATE, input=gql_order(order_body(world, ("bolt", 3, "1"))))
    await mutate(client, PLACE, id=created["id"])
    unknown = {"lines": [{"lineId": "999999", "quantity": 1}]}
    refused = await mutate(client, RECEIVE, id=created["id"], input=unknown)
    assert refused["__typename"] == "ValidationFailed", refused
    assert [e["loc"] for e in refused["errors"]] == [["input", "lines", "0", "lineId"]]
    for document in (PLACE, CANCEL):
        missing = await mutate(client, document, id="999999")
        assert missing["__typename"] == "NotFound", missing
        malformed = await mutate(client, document, id="abc")
        assert malformed["__typename"] == "ValidationFailed", malformed


async def test_lists_page_as_rest_with_each_filter(client, world):
    other = await create(client, "/suppliers", name="Bolt Bros")
    made = []
    for n in range(5):
        body = order_body(world, ("bolt" if n % 2 else "nut", 1, "1"))
        if n == 3:
            body["supplier_id"] = other["id"]
        made.append(await mutate(client, CREATE, input=gql_order(body)))
    await mutate(client, PLACE, id=made[0]["id"])
    await mutate(client, CANCEL, id=made[1]["id"])
    filters: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({}, {}),
        ({"status": "DRAFT"}, {"status": "draft"}),
        ({"status": "PLACED"}, {"status": "placed"}),
        ({"supplierId": str(other["id"])}, {"supplier_id": other["id"]}),
        ({"productId": str(world["bolt"])}, {"product_id": world["bolt"]}),
        ({"warehouseId": str(world["east"])}, {"warehouse_id": world["east"]}),
    ]
    for graphql_filter, rest_params in filters:
        after: str | None = None
        seen: list[dict[str, Any]] = []
        while True:
            body = await gql(client, LIST, f=graphql_filter, first=2, after=after)
            assert "errors" not in body, body
            page = body["data"]["purchaseOrders"]
            cursor = {"cursor": after} if after else {}
            expected = (await client.get(ORDERS, params=rest_params | {"limit": 2} | cursor)).json()
            assert [as_rest(e["node"]) for e in page["edges"]] == [
                rest(x) for x in expected["items"]
            ]
            assert page["pageInfo"] == {
                "hasNextPage": expected["next_cursor"] is not None,
                "endCursor": expected["next_cursor"],
            }
            seen += expected["items"]
            if expected["next_cursor"] is None:
                break
            after = expected["next_cursor"]
        assert seen == await collect_pages(client, ORDERS, **rest_params)
    everyone = await collect_pages(client, ORDERS)
    assert [o["id"] for o in everyone] == sorted((int(o["id"]) for o in made), reverse=True)

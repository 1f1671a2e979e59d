"""Reservations over GraphQL answer what REST answers: the same holds, refusals, confirmations,
releases and lists, page by page with the same cursors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.graphql.helpers import RESERVATION, RESERVATIONS, gql, rest, rest_loc
from tests.helpers import API, assert_problem, collect_pages

REST = f"{API}/reservations"
MOVEMENTS = f"{API}/stock/movements"

RESULT = f"""
    __typename
    ... on Reservation {{ {RESERVATION} }}
    ... on Shortage {{ message errors {{ loc available requested }} }}
    ... on InsufficientStock {{ message available requested }}
    ... on NotFound {{ message }}
    ... on Conflict {{ message }}
    ... on ValidationFailed {{ message errors {{ loc msg type }} }}
"""
CREATE = f"""mutation($input: CreateReservationInput!) {{
    createReservation(input: $input) {{ {RESULT} }} }}"""
CONFIRM = f"mutation($id: ID!) {{ confirmReservation(id: $id) {{ {RESULT} }} }}"
RELEASE = f"mutation($id: ID!) {{ releaseReservation(id: $id) {{ {RESULT} }} }}"
ONE = f"query($id: ID!) {{ reservation(id: $id) {{ {RESERVATION} }} }}"


def as_rest(node: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL reservation as REST writes it (timestamps as instants, for ``rest``)."""
    return rest(
        {
            "id": int(node["id"]),
            "status": node["status"].lower(),
            "reference": node["reference"],
            "expires_at": node["expiresAt"],
            "created_at": node["createdAt"],
            "lines": [
                {
                    "product_id": int(line["productId"]),
                    "warehouse_id": int(line["warehouseId"]),
                    "quantity": line["quantity"],
                }
                for line in node["lines"]
            ],
            "movement_ids": [int(i) for i in node["movementIds"]],
            "sales_order_id": None if node["salesOrderId"] is None else int(node["salesOrderId"]),
        }
    )


def gql_line(line: dict[str, Any]) -> dict[str, Any]:
    names = {"product_id": "productId", "warehouse_id": "warehouseId", "quantity": "quantity"}
    return {names[k]: str(v) if k.endswith("_id") else v for k, v in line.items() if k in names}


async def create_both(
    client: httpx.AsyncClient, *lines: dict[str, Any], **extra: Any
) -> tuple[dict[str, Any], httpx.Response]:
    """The same hold asked of GraphQL, then of REST: GraphQL's answer, REST's response."""
    variables = {"lines": [gql_line(line) for line in lines]}
    if "reference" in extra:
        variables["reference"] = extra["reference"]
    if "ttl_seconds" in extra:
        variables["ttlSeconds"] = extra["ttl_seconds"]
    body = await gql(client, CREATE, input=variables)
    assert "errors" not in body, body
    by_rest = await client.post(REST, json={"lines": list(lines), **extra})
    return body["data"]["createReservation"], by_rest


async def level(client: httpx.AsyncClient, product_id: int, warehouse_id: int) -> dict[str, Any]:
    page = await client.get(
        f"{API}/stock", params={"product_id": product_id, "warehouse_id": warehouse_id}
    )
    [item] = page.json()["items"]
    return {k: item[k] for k in ("quantity", "reserved", "available")}


def without_identity(reservation: dict[str, Any]) -> dict[str, Any]:
    """What two holds made of the same request share (not their id or timestamps)."""
    return {k: v for k, v in reservation.items() if k not in ("id", "expires_at", "created_at")}


async def test_create_holds_as_rest_does_and_reads_back_the_same(client, world):
    lines = (
        {"product_id": world["bolt"], "warehouse_id": world["main"], "quantity": 2},
        {"product_id": world["nut"], "quantity": 1},
    )
    by_graphql, by_rest = await create_both(client, *lines, reference="cart-1", ttl_seconds=600)
    assert by_graphql["__typename"] == "Reservation", by_graphql
    assert by_rest.status_code == 201, by_rest.text
    held = as_rest(by_graphql)
    assert held["status"] == "held"
    assert without_identity(held) == without_identity(rest(by_rest.json()))
    assert (held["expires_at"] - held["created_at"]).total_seconds() == 600
    stored = await client.get(f"{REST}/{held['id']}")
    assert rest(stored.json()) == held
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 10,
        "reserved": 4,
        "available": 6,
    }

    one = await gql(client, ONE, id=str(held["id"]))
    assert as_rest(one["data"]["reservation"]) == held
    assert (await gql(client, ONE, id="999999"))["data"] == {"reservation": None}


async def test_a_line_without_a_warehouse_is_placed_as_rest_places_it(client, world):
    by_graphql, by_rest = await create_both(client, {"product_id": world["bolt"], "quantity": 4})
    # GraphQL's hold took 4 of main's 10; REST's then finds main and east at 6 and 4.
    assert by_graphql["lines"][0]["warehouseId"] == str(world["main"])
    assert by_rest.json()["lines"][0]["warehouse_id"] == world["main"]
    nested = await gql(
        client,
        "query($id: ID!) { reservation(id: $id) { lines { product { sku } warehouse { code } } } }",
        id=by_graphql["id"],
    )
    assert nested["data"]["reservation"]["lines"] == [
        {"product": {"sku": "BOLT-1"}, "warehouse": {"code": "MAIN"}}
    ]


async def test_a_shortage_names_each_short_line_and_holds_nothing(client, world):
    lines = (
        {"product_id": world["bolt"], "warehouse_id": world["main"], "quantity": 2},
        {"product_id": world["nut"], "warehouse_id": world["main"], "quantity": 5},
        {"product_id": world["bolt"], "warehouse_id": world["east"], "quantity": 9},
    )
    by_graphql, by_rest = await create_both(client, *lines)
    assert by_graphql["__typename"] == "Shortage", by_graphql
    assert by_graphql["errors"] == [
        {"loc": ["input", "lines", "1"], "available": 3, "requested": 5},
        {"loc": ["input", "lines", "2"], "available": 4, "requested": 9},
    ]
    assert_problem(by_rest, 409)
    assert [{**e, "loc": rest_loc(e["loc"])} for e in by_rest.json()["errors"]] == by_graphql[
        "errors"
    ]
    assert (await level(client, world["bolt"], world["main"]))["reserved"] == 0
    assert (await client.get(REST)).json()["items"] == []


@pytest.mark.parametrize(
    ("lines", "extra", "loc"),
    [
        ([], {}, ["input", "lines"]),
        ([{"product_id": "@bolt", "quantity": 0}], {}, ["input", "lines", "0", "quantity"]),
        (
            [{"product_id": "@bolt", "quantity": 1}],
            {"ttl_seconds": 86_401},
            ["input", "ttlSeconds"],
        ),
        ([{"product_id": "@bolt", "quantity": 1}], {"ttl_seconds": 0}, ["input", "ttlSeconds"]),
        (
            [{"product_id": "@bolt", "quantity": 1}],
            {"reference": "x" * 101},
            ["input", "reference"],
        ),
    ],
)
async def test_bad_input_is_refused_where_rest_refuses_it(client, world, lines, extra, loc):
    filled = [
        {k: world[v[1:]] if isinstance(v, str) else v for k, v in line.items()} for line in lines
    ]
    by_graphql, by_rest = await create_both(client, *filled, **extra)
    assert by_graphql["__typename"] == "ValidationFailed", by_graphql
    assert loc in [e["loc"] for e in by_graphql["errors"]]
    assert_problem(by_rest, 422)
    assert loc in [rest_loc(e["loc"]) for e in by_rest.json()["errors"]]
    assert (await client.get(REST)).json()["items"] == []


async def test_an_unknown_product_or_warehouse_is_not_found(client, world):
    for line in (
        {"product_id": 999_999, "quantity": 1},
        {"product_id": world["bolt"], "warehouse_id": 999_999, "quantity": 1},
    ):
        by_graphql, by_rest = await create_both(client, line)
        assert by_graphql["__typename"] == "NotFound", by_graphql
        assert_problem(by_rest, 404)


async def test_confirm_ships_once_and_answers_the_same_again(client, world):
    held = await gql(
        client,
        CREATE,
        input={
            "lines": [
                {"productId": str(world["bolt"]), "warehouseId": str(world["main"]), "quantity": 4},
                {"productId": str(world["nut"]), "quantity": 1},
            ],
            "reference": "order-9",
        },
    )
    reservation_id = held["data"]["createReservation"]["id"]
    confirmed = (await gql(client, CONFIRM, id=reservation_id))["data"]["confirmReservation"]
    assert confirmed["__typename"] == "Reservation"
    assert confirmed["status"] == "CONFIRMED"
    assert len(confirmed["movementIds"]) == 2
    again = (await gql(client, CONFIRM, id=reservation_id))["data"]["confirmReservation"]
    assert again == confirmed
    by_rest = await client.post(f"{REST}/{reservation_id}/confirm")
    assert rest(by_rest.json()) == as_rest(confirmed)
    shipments = await collect_pages(client, MOVEMENTS, kind="shipment")
    assert sorted(str(m["id"]) for m in shipments) == sorted(confirmed["movementIds"])
    assert {m["reference"] for m in shipments} == {"order-9"}
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 6,
        "reserved": 0,
        "available": 6,
    }

    refused = (await gql(client, RELEASE, id=reservation_id))["data"]["releaseReservation"]
    assert refused["__typename"] == "Conflict", refused
    assert_problem(await client.post(f"{REST}/{reservation_id}/release"), 409)


async def test_release_gives_units_back_and_confirm_after_it_is_a_conflict(client, world):
    held = await gql(
        client, CREATE, input={"lines": [{"productId": str(world["nut"]), "quantity": 3}]}
    )
    reservation_id = held["data"]["createReservation"]["id"]
    released = (await gql(client, RELEASE, id=reservation_id))["data"]["releaseReservation"]
    assert released["status"] == "RELEASED"
    again = (await gql(client, RELEASE, id=reservation_id))["data"]["releaseReservation"]
    assert again == released
    assert rest((await client.post(f"{REST}/{reservation_id}/release")).json()) == as_rest(released)
    assert (await level(client, world["nut"], world["main"]))["available"] == 3
    refused = (await gql(client, CONFIRM, id=reservation_id))["data"]["confirmReservation"]
    assert refused["__typename"] == "Conflict", refused
    assert (await collect_pages(client, MOVEMENTS, kind="shipment")) == []


@pytest.mark.parametrize("mutation", [CONFIRM, RELEASE])
async def test_an_unknown_or_malformed_id_is_refused(client, world, mutation):
    name = "confirmReservation" if mutation is CONFIRM else "releaseReservation"
    missing = (await gql(client, mutation, id="999999"))["data"][name]
    assert missing["__typename"] == "NotFound", missing
    malformed = (await gql(client, mutation, id="abc"))["data"][name]
    assert malformed["__typename"] == "ValidationFailed", malformed
    assert [e["loc"] for e in malformed["errors"]] == [["id"]]


async def test_lists_page_as_rest_with_each_filter(client, world):
    made = []
    for n in range(5):
        line = {"productId": str(world["bolt" if n % 2 else "nut"]), "quantity": 1}
        if n == 4:
            line["warehouseId"] = str(world["main"])
        body = await gql(client, CREATE, input={"lines": [line], "reference": f"cart-{n % 2}"})
        made.append(body["data"]["createReservation"]["id"])
    assert (await gql(client, CONFIRM, id=made[0]))["data"]["confirmReservation"]["status"] == (
        "CONFIRMED"
    )
    assert (await gql(client, RELEASE, id=made[1]))["data"]["releaseReservation"]["status"] == (
        "RELEASED"
    )

    filters: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({}, {}),
        ({"status": "HELD"}, {"status": "held"}),
        ({"status": "CONFIRMED"}, {"status": "confirmed"}),
        ({"status": "EXPIRED"}, {"status": "expired"}),
        ({"productId": str(world["bolt"])}, {"product_id": world["bolt"]}),
        ({"warehouseId": str(world["east"])}, {"warehouse_id": world["east"]}),
        ({"reference": "cart-0"}, {"reference": "cart-0"}),
    ]
    for graphql_filter, rest_params in filters:
        after: str | None = None
        seen: list[dict[str, Any]] = []
        while True:
            body = await gql(client, RESERVATIONS.query, f=graphql_filter, first=2, after=after)
            assert "errors" not in body, body
            page = body["data"]["reservations"]
            cursor = {"cursor": after} if after else {}
            expected = (await client.get(REST, params=rest_params | {"limit": 2} | cursor)).json()
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
        everything = await collect_pages(client, REST, **rest_params)
        assert seen == everything
    everyone = await collect_pages(client, REST)
    assert [r["id"] for r in everyone] == sorted((int(i) for i in made), reverse=True)


async def test_a_bad_filter_cursor_or_page_size_is_bad_user_input(client, world):
    ids = "query($f: ReservationFilter, $first: Int, $after: String) { reservations(filter: $f, first: $first, after: $after) { edges { node { id } } } }"  # noqa: E501
    for variables in (
        {"f": {"productId": "abc"}},
        {"after": "garbage"},
        {"first": 0},
        {"first": 201},
    ):
        body = await gql(client, ids, **variables)
        assert body["data"] is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


async def test_a_page_may_carry_every_line_of_every_reservation_at_the_default_size(client, world):
    """Each reservation may have up to 100 lines: the cost limit counts them all, so the
    default page with its lines is served and the largest page with them is not."""
    body = await gql(client, RESERVATIONS.query)
    assert "errors" not in body, body
    costly = await gql(client, RESERVATIONS.query, first=200)
    assert [e["extensions"]["code"] for e in costly["errors"]] == ["QUERY_TOO_COSTLY"]

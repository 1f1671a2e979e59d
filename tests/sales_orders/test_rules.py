"""Sales orders over REST: drafts, allocation with backorders, shipping from allocated stock,
cancelling, and the refusals, each leaving nothing half-applied."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.helpers import API, assert_ledger_consistent, assert_problem, error_locs, receive_stock
from tests.sales_orders.conftest import (
    ORDERS,
    done,
    figures,
    holds_until,
    level,
    line,
    new_order,
    step,
)

MOVEMENTS = f"{API}/stock/movements"
RESERVATIONS = f"{API}/reservations"


async def test_a_draft_gets_the_next_number_and_its_products_prices(client, world):
    first = await new_order(
        client,
        line(world["bolt"], world["main"], 3),
        line(world["nut"], world["east"], 2, unit_price="0.75"),
        customer_reference="ACME-1",
    )
    second = await new_order(client, line(world["nut"], world["main"], 1))
    assert (first["number"], second["number"]) == ("SO-000001", "SO-000002")
    assert first["status"] == "draft"
    assert first["customer_reference"] == "ACME-1"
    assert [{k: v for k, v in ln.items() if k != "id"} for ln in first["lines"]] == [
        {
            "product_id": world["bolt"],
            "warehouse_id": world["main"],
            "quantity": 3,
            "allocated": 0,
            "shipped": 0,
            "unit_price": "2.50",
            "backordered": 3,
        },
        {
            "product_id": world["nut"],
            "warehouse_id": world["east"],
            "quantity": 2,
            "allocated": 0,
            "shipped": 0,
            "unit_price": "0.75",
            "backordered": 2,
        },
    ]
    assert (await client.get(f"{ORDERS}/{first['id']}")).json() == first
    # A draft holds nothing.
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 10,
        "reserved": 0,
        "available": 10,
    }
    listed = (await client.get(ORDERS)).json()
    assert [o["number"] for o in listed["items"]] == ["SO-000002", "SO-000001"]
    assert listed["next_cursor"] is None
    drafts = (await client.get(ORDERS, params={"customer_reference": "ACME-1"})).json()
    assert [o["id"] for o in drafts["items"]] == [first["id"]]


async def test_confirm_allocates_what_is_free_in_line_order_and_backorders_the_rest(client, world):
    await client.post(
        RESERVATIONS,
        json={
            "lines": [{"product_id": world["nut"], "warehouse_id": world["main"], "quantity": 1}]
        },
    )
    order = await new_order(
        client,
        line(world["bolt"], world["main"], 6),
        line(world["bolt"], world["main"], 6),
        line(world["nut"], world["main"], 5),
    )
    confirmed = await done(client, order["id"], "confirm")
    assert confirmed["status"] == "confirmed"
    assert confirmed["confirmed_at"] is not None
    assert figures(confirmed) == [(6, 6, 0), (6, 4, 0), (5, 2, 0)]
    assert [ln["backordered"] for ln in confirmed["lines"]] == [0, 2, 3]
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 10,
        "reserved": 10,
        "available": 0,
    }
    assert (await level(client, world["nut"], world["main"]))["available"] == 0
    backordered = (await client.get(ORDERS, params={"backordered": "true"})).json()
    assert [o["id"] for o in backordered["items"]] == [order["id"]]

    # The allocations are one reservation without expiry, which only the order ends.
    [allocation] = (await client.get(RESERVATIONS, params={"reference": order["number"]})).json()[
        "items"
    ]
    assert allocation["status"] == "held"
    assert allocation["expires_at"] is None
    assert allocation["sales_order_id"] == order["id"]
    assert sorted((ln["product_id"], ln["quantity"]) for ln in allocation["lines"]) == sorted(
        [(world["bolt"], 6), (world["bolt"], 4), (world["nut"], 2)]
    )
    for action in ("confirm", "release"):
        refused = await client.post(f"{RESERVATIONS}/{allocation['id']}/{action}")
        assert_problem(refused, 409)
    assert (await level(client, world["bolt"], world["main"]))["reserved"] == 10


async def test_allocated_units_are_out_of_reach_of_a_plain_shipment(client, world):
    order = await new_order(client, line(world["bolt"], world["main"], 8))
    await done(client, order["id"], "confirm")
    body = {"product_id": world["bolt"], "warehouse_id": world["main"], "kind": "shipment"}
    refused = await client.post(MOVEMENTS, json=body | {"quantity": 3})
    assert_problem(refused, 409)
    assert (refused.json()["available"], refused.json()["requested"]) == (2, 3)
    assert (await client.post(MOVEMENTS, json=body | {"quantity": 2})).status_code == 201


async def test_partial_shipments_then_backorders_allocated_then_shipped_in_full(
    client, world, engine
):
    order = await new_order(
        client, line(world["bolt"], world["main"], 12), line(world["nut"], world["main"], 2)
    )
    bolts, nuts = (ln["id"] for ln in order["lines"])
    confirmed = await done(client, order["id"], "confirm")
    assert figures(confirmed) == [(12, 10, 0), (2, 2, 0)]

    partly = await done(client, order["id"], "ship", lines=[{"line_id": bolts, "quantity": 4}])
    assert partly["status"] == "partially_shipped"
    assert figures(partly) == [(12, 10, 4), (2, 2, 0)]
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 6,
        "reserved": 6,
        "available": 0,
    }
    [shipment] = (await client.get(MOVEMENTS, params={"kind": "shipment"})).json()["items"]
    assert (shipment["quantity"], shipment["reference"]) == (-4, order["number"])

    assert (await receive_stock(client, world["bolt"], world["main"], 5)).status_code == 201
    allocated = await done(client, order["id"], "allocate")
    assert figures(allocated) == [(12, 12, 4), (2, 2, 0)]
    assert (await level(client, world["bolt"], world["main"]))["available"] == 3
    # One live line per order line, however many times it was topped up.
    [held] = (await client.get(RESERVATIONS, params={"reference": order["number"]})).json()["items"]
    assert sorted((ln["product_id"], ln["quantity"]) for ln in held["lines"]) == sorted(
        [(world["bolt"], 8), (world["nut"], 2)]
    )

    shipped = await done(
        client,
        order["id"],
        "ship",
        lines=[{"line_id": nuts, "quantity": 2}, {"line_id": bolts, "quantity": 8}],
    )
    assert shipped["status"] == "shipped"
    assert shipped["closed_at"] is not None
    assert figures(shipped) == [(12, 12, 12), (2, 2, 2)]
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 3,
        "reserved": 0,
        "available": 3,
    }
    [allocation] = (await client.get(RESERVATIONS, params={"reference": order["number"]})).json()[
        "items"
    ]
    assert allocation["status"] == "confirmed"
    assert allocation["lines"] == []
    shipments = (await client.get(MOVEMENTS, params={"kind": "shipment"})).json()["items"]
    assert sorted(allocation["movement_ids"]) == sorted(m["id"] for m in shipments)
    assert {m["reference"] for m in shipments} == {order["number"]}

    # The level's last hold has ended: a shipment is the one-statement decrement again.
    assert await holds_until(engine, world["bolt"], world["main"]) is None
    body = {"product_id": world["bolt"], "warehouse_id": world["main"], "kind": "shipment"}
    assert (await client.post(MOVEMENTS, json=body | {"quantity": 3})).status_code == 201
    await assert_ledger_consistent(engine)


async def test_a_product_made_inactive_gets_no_more_units(client, world):
    order = await new_order(client, line(world["bolt"], world["main"], 12))
    assert figures(await done(client, order["id"], "confirm")) == [(12, 10, 0)]
    assert (await receive_stock(client, world["bolt"], world["main"], 2)).status_code == 201
    await client.patch(f"{API}/products/{world['bolt']}", json={"is_active": False})
    assert_problem(await step(client, order["id"], "allocate"), 409)
    assert figures((await client.get(f"{ORDERS}/{order['id']}")).json()) == [(12, 10, 0)]
    assert (await level(client, world["bolt"], world["main"]))["reserved"] == 10


async def test_shipping_more_than_allocated_names_every_such_line_and_ships_nothing(client, world):
    order = await new_order(
        client,
        line(world["bolt"], world["main"], 12),
        line(world["nut"], world["main"], 2),
        line(world["bolt"], world["east"], 1),
    )
    bolts, nuts, east = (ln["id"] for ln in order["lines"])
    await done(client, order["id"], "confirm")
    refused = await step(
        client,
        order["id"],
        "ship",
        lines=[
            {"line_id": nuts, "quantity": 1},
            {"line_id": bolts, "quantity": 11},
            {"line_id": east, "quantity": 2},
        ],
    )
    body = assert_problem(refused, 409)
    assert body["type"] == "urn:inventory:problem:not-allocated"
    assert body["errors"] == [
        {"loc": ["body", "lines", 1], "allocated": 10, "requested": 11},
        {"loc": ["body", "lines", 2], "allocated": 1, "requested": 2},
    ]
    after = (await client.get(f"{ORDERS}/{order['id']}")).json()
    assert after["status"] == "confirmed"
    assert figures(after) == [(12, 10, 0), (2, 2, 0), (1, 1, 0)]
    assert (await client.get(MOVEMENTS, params={"kind": "shipment"})).json()["items"] == []
    assert await level(client, world["nut"], world["main"]) == {
        "quantity": 3,
        "reserved": 2,
        "available": 1,
    }


async def test_cancel_frees_the_allocation_and_keeps_what_shipped(client, world, engine):
    order = await new_order(client, line(world["bolt"], world["main"], 7))
    [bolts] = (ln["id"] for ln in order["lines"])
    await done(client, order["id"], "confirm")
    await done(client, order["id"], "ship", lines=[{"line_id": bolts, "quantity": 2}])
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 8,
        "reserved": 5,
        "available": 3,
    }
    cancelled = await done(client, order["id"], "cancel")
    assert cancelled["status"] == "cancelled"
    assert figures(cancelled) == [(7, 2, 2)]
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 8,
        "reserved": 0,
        "available": 8,
    }
    [allocation] = (await client.get(RESERVATIONS, params={"reference": order["number"]})).json()[
        "items"
    ]
    assert allocation["status"] == "released"
    assert await holds_until(engine, world["bolt"], world["main"]) is None
    # A draft cancels too, holding nothing.
    draft = await new_order(client, line(world["nut"], world["main"], 1))
    assert (await done(client, draft["id"], "cancel"))["status"] == "cancelled"


async def test_a_cancelled_allocation_leaves_other_holds_counted(client, world, engine):
    held = await client.post(
        RESERVATIONS,
        json={
            "lines": [{"product_id": world["bolt"], "warehouse_id": world["main"], "quantity": 2}],
            "ttl_seconds": 600,
        },
    )
    order = await new_order(client, line(world["bolt"], world["main"], 3))
    await done(client, order["id"], "confirm")
    await done(client, order["id"], "cancel")
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 10,
        "reserved": 2,
        "available": 8,
    }
    until = await holds_until(engine, world["bolt"], world["main"])
    expected = datetime.fromisoformat(held.json()["expires_at"])
    assert until.replace(tzinfo=until.tzinfo or UTC) == expected
    body = {"product_id": world["bolt"], "warehouse_id": world["main"], "kind": "shipment"}
    assert_problem(await client.post(MOVEMENTS, json=body | {"quantity": 9}), 409)


@pytest.mark.parametrize(
    ("steps", "refused", "current"),
    [
        ([], "allocate", "draft"),
        ([], "ship", "draft"),
        (["confirm"], "confirm", "confirmed"),
        (["cancel"], "cancel", "cancelled"),
        (["cancel"], "confirm", "cancelled"),
        (["confirm", "cancel"], "allocate", "cancelled"),
        (["confirm", "cancel"], "ship", "cancelled"),
    ],
)
async def test_a_step_its_status_does_not_allow_is_refused_with_that_status(
    client, world, steps, refused, current
):
    order = await new_order(client, line(world["bolt"], world["main"], 2))
    for name in steps:
        await done(client, order["id"], name)
    body = {"lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}]}
    answer = await step(client, order["id"], refused, **(body if refused == "ship" else {}))
    problem = assert_problem(answer, 409)
    assert problem["type"] == "urn:inventory:problem:invalid-transition"
    assert problem["current_status"] == current
    assert (await client.get(f"{ORDERS}/{order['id']}")).json()["status"] == current


async def test_a_shipped_order_cannot_be_cancelled(client, world):
    order = await new_order(client, line(world["nut"], world["main"], 3))
    await done(client, order["id"], "confirm")
    await done(
        client, order["id"], "ship", lines=[{"line_id": order["lines"][0]["id"], "quantity": 3}]
    )
    problem = assert_problem(await step(client, order["id"], "cancel"), 409)
    assert problem["current_status"] == "shipped"


async def test_bad_orders_are_refused_and_take_no_number(client, world):
    bolt, main = world["bolt"], world["main"]
    invalid = [
        ({"lines": [line(999, main, 1)]}, ["body", "lines", 0, "product_id"]),
        (
            {"lines": [line(bolt, main, 1), line(bolt, 999, 1)]},
            ["body", "lines", 1, "warehouse_id"],
        ),
        ({"lines": []}, ["body", "lines"]),
        ({"lines": [line(bolt, main, 0)]}, ["body", "lines", 0, "quantity"]),
        ({"lines": [line(bolt, main, 1, unit_price="-1")]}, ["body", "lines", 0, "unit_price"]),
        ({"lines": [{"product_id": bolt, "quantity": 1}]}, ["body", "lines", 0, "warehouse_id"]),
        ({"lines": [line(bolt, main, 1)], "status": "shipped"}, ["body", "status"]),
    ]
    for body, loc in invalid:
        assert loc in error_locs(await client.post(ORDERS, json=body)), body
    await client.patch(f"{API}/products/{world['nut']}", json={"is_active": False})
    assert_problem(await client.post(ORDERS, json={"lines": [line(world["nut"], main, 1)]}), 409)
    # A name that does not exist is reported before an inactive product.
    both = await client.post(ORDERS, json={"lines": [line(world["nut"], 999, 1)]})
    assert error_locs(both) == [["body", "lines", 0, "warehouse_id"]]
    assert (await client.get(ORDERS)).json()["items"] == []
    assert (await new_order(client, line(bolt, main, 1)))["number"] == "SO-000001"
    assert_problem(await client.get(f"{ORDERS}/999"), 404)
    assert_problem(await step(client, 999, "confirm"), 404)
    assert_problem(await client.get(f"{ORDERS}/0"), 422)


async def test_bad_shipments_are_refused(client, world):
    order = await new_order(client, line(world["bolt"], world["main"], 5))
    other = await new_order(client, line(world["bolt"], world["main"], 1))
    await done(client, order["id"], "confirm")
    mine, theirs = order["lines"][0]["id"], other["lines"][0]["id"]
    unknown = await step(client, order["id"], "ship", lines=[{"line_id": theirs, "quantity": 1}])
    assert error_locs(unknown) == [["body", "lines", 0, "line_id"]]
    twice = await step(
        client,
        order["id"],
        "ship",
        lines=[{"line_id": mine, "quantity": 1}, {"line_id": mine, "quantity": 1}],
    )
    assert error_locs(twice) == [["body", "lines", 1, "line_id"]]
    assert_problem(await step(client, order["id"], "ship", lines=[]), 422)
    zero = await step(client, order["id"], "ship", lines=[{"line_id": mine, "quantity": 0}])
    assert error_locs(zero) == [["body", "lines", 0, "quantity"]]
    assert (await client.get(f"{ORDERS}/{order['id']}")).json()["lines"][0]["shipped"] == 0


async def test_a_repeated_shipment_with_its_key_ships_once(client, world):
    order = await new_order(client, line(world["bolt"], world["main"], 5))
    await done(client, order["id"], "confirm")
    url = f"{ORDERS}/{order['id']}/ship"
    body = {"lines": [{"line_id": order["lines"][0]["id"], "quantity": 2}]}
    headers = {"Idempotency-Key": "ship-1"}
    first = await client.post(url, json=body, headers=headers)
    again = await client.post(url, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert figures(first.json()) == [(5, 5, 2)]
    assert len((await client.get(MOVEMENTS, params={"kind": "shipment"})).json()["items"]) == 1
    other = await client.post(
        url, json={"lines": [body["lines"][0] | {"quantity": 1}]}, headers=headers
    )
    assert_problem(other, 422)
    # Without a key, a repeat is a second shipment.
    assert figures(await done(client, order["id"], "ship", **body)) == [(5, 5, 4)]

"""Purchase orders over REST: numbering, placing, receiving line by line into the ledger,
cancelling, and every refusal, with nothing half-applied."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.models import StockLevel, StockMovement
from tests.helpers import API, assert_ledger_consistent, assert_problem
from tests.purchase_orders.conftest import ORDERS, levels, order_body, placed_order, receipts_of


async def receive(
    client: httpx.AsyncClient, order: dict[str, Any], *parts: tuple[int, int], **headers: str
) -> httpx.Response:
    """Receive (line index, units) of ``order``."""
    lines = [{"line_id": order["lines"][i]["id"], "quantity": q} for i, q in parts]
    return await client.post(
        f"{ORDERS}/{order['id']}/receive", json={"lines": lines}, headers=headers
    )


async def test_three_lines_received_in_four_receipts_agree_with_the_ledger_at_every_step(
    client, world, engine
):
    order = await placed_order(
        client, world, ("bolt", 10, "2.00"), ("nut", 6, "0.5"), ("washer", 4, "0.1250")
    )
    assert order["number"] == "PO-000001"
    assert order["status"] == "placed"
    ordered = {line["product_id"]: line["quantity"] for line in order["lines"]}

    async def agrees(status: str, received: dict[str, int]) -> None:
        stored = (await client.get(f"{ORDERS}/{order['id']}")).json()
        assert stored["status"] == status
        by_product = {line["product_id"]: line for line in stored["lines"]}
        ledger = await receipts_of(client, order["number"])
        at_main = await levels(client, world["main"])
        for name, units in received.items():
            product = world[name]
            line = by_product[product]
            assert line["received"] == units, name
            assert line["open"] == ordered[product] - units, name
            assert sum(e["quantity"] for e in ledger if e["product_id"] == product) == units
            assert at_main[product] == {
                "quantity": units,
                "on_order": ordered[product] - units,
            }, name
        assert {e["warehouse_id"] for e in ledger} <= {world["main"]}

    await agrees("placed", {"bolt": 0, "nut": 0, "washer": 0})
    steps: list[tuple[list[tuple[int, int]], str, dict[str, int]]] = [
        ([(0, 4)], "partially_received", {"bolt": 4, "nut": 0, "washer": 0}),
        ([(0, 3), (1, 6)], "partially_received", {"bolt": 7, "nut": 6, "washer": 0}),
        ([(2, 1), (0, 3)], "partially_received", {"bolt": 10, "nut": 6, "washer": 1}),
        ([(2, 3)], "received", {"bolt": 10, "nut": 6, "washer": 4}),
    ]
    for parts, status, received in steps:
        answer = await receive(client, order, *parts)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == status
        assert answer.json() == (await client.get(f"{ORDERS}/{order['id']}")).json()
        await agrees(status, received)
        if status == "partially_received" and received["bolt"] == 4:
            # More than is open on two lines: both are named, nothing is recorded.
            refused = await receive(client, order, (0, 7), (1, 2), (1 + 1, 5))
            body = assert_problem(refused, 409)
            assert body["type"] == "urn:inventory:problem:over-receipt"
            assert body["errors"] == [
                {"loc": ["body", "lines", 0], "open": 6, "requested": 7},
                {"loc": ["body", "lines", 2], "open": 4, "requested": 5},
            ]
            await agrees(status, received)

    ledger = await receipts_of(client, order["number"])
    assert len(ledger) == 6
    fifth = await receive(client, order, (1, 1))
    body = assert_problem(fifth, 409)
    assert body["current_status"] == "received"
    assert await receipts_of(client, order["number"]) == ledger
    await agrees("received", {"bolt": 10, "nut": 6, "washer": 4})
    closed = (await client.get(f"{ORDERS}/{order['id']}")).json()
    assert closed["closed_at"] is not None
    await assert_ledger_consistent(engine)


async def test_receipts_carry_the_lines_unit_cost_and_average_it_in(client, world, engine):
    order = await placed_order(client, world, ("bolt", 40, "4"), ("nut", 10, "0"))
    assert [line["unit_cost"] for line in order["lines"]] == ["4.0000", "0.0000"]
    manual = {"product_id": world["bolt"], "warehouse_id": world["main"], "kind": "receipt"}
    earlier = await client.post(
        f"{API}/stock/movements", json=manual | {"quantity": 10, "unit_cost": "2"}
    )
    assert earlier.status_code == 201, earlier.text
    assert (await receive(client, order, (0, 30), (1, 10))).status_code == 200
    ids = [e["id"] for e in await receipts_of(client, order["number"])]
    async with AsyncSession(engine) as session:
        costs = (
            await session.execute(
                select(StockMovement.product_id, StockMovement.unit_cost)
                .where(StockMovement.id.in_(ids))
                .order_by(StockMovement.id)
            )
        ).all()
        average = await session.scalar(
            select(StockLevel.average_cost).where(
                StockLevel.product_id == world["bolt"], StockLevel.warehouse_id == world["main"]
            )
        )
    assert costs == [(world["bolt"], Decimal("4.0000")), (world["nut"], Decimal("0.0000"))]
    assert average == Decimal("3.5000")


async def test_numbers_are_consecutive_and_a_refused_creation_takes_none(client, world):
    first = await client.post(ORDERS, json=order_body(world, ("bolt", 1, "1")))
    refused = await client.post(
        ORDERS, json=order_body(world, ("bolt", 1, "1")) | {"supplier_id": 999_999}
    )
    assert_problem(refused, 422)
    second = await client.post(ORDERS, json=order_body(world, ("nut", 2, "1"), reference="Q-1"))
    assert [first.json()["number"], second.json()["number"]] == ["PO-000001", "PO-000002"]
    assert second.headers["location"] == f"{ORDERS}/{second.json()['id']}"
    body = second.json()
    assert body["status"] == "draft"
    assert body["reference"] == "Q-1"
    assert body["placed_at"] is None
    assert body["lines"][0] | {"id": 0} == {
        "id": 0,
        "product_id": world["nut"],
        "quantity": 2,
        "unit_cost": "1.0000",
        "received": 0,
        "open": 2,
    }
    # A draft puts nothing on order.
    assert await levels(client, world["main"]) == {}


async def test_a_draft_is_edited_and_lines_replaced_until_it_is_placed(client, world):
    created = (
        await client.post(ORDERS, json=order_body(world, ("bolt", 5, "1"), ("nut", 1, "1")))
    ).json()
    edited = await client.patch(
        f"{ORDERS}/{created['id']}",
        json={
            "warehouse_id": world["east"],
            "expected_on": "2026-12-24",
            "lines": [{"product_id": world["washer"], "quantity": 9, "unit_cost": "0.0125"}],
        },
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert (body["warehouse_id"], body["expected_on"], body["number"]) == (
        world["east"],
        "2026-12-24",
        created["number"],
    )
    assert [(ln["product_id"], ln["quantity"], ln["unit_cost"]) for ln in body["lines"]] == [
        (world["washer"], 9, "0.0125")
    ]
    cleared = await client.patch(f"{ORDERS}/{created['id']}", json={"expected_on": None})
    assert cleared.json()["expected_on"] is None
    assert cleared.json()["lines"] == body["lines"]

    placed = await client.post(f"{ORDERS}/{created['id']}/place")
    assert placed.json()["status"] == "placed"
    assert await levels(client, world["east"]) == {world["washer"]: {"quantity": 0, "on_order": 9}}
    refused = await client.patch(f"{ORDERS}/{created['id']}", json={"reference": "late"})
    assert assert_problem(refused, 409)["current_status"] == "placed"
    assert (await client.get(f"{ORDERS}/{created['id']}")).json()["reference"] is None


async def test_cancel_takes_what_is_still_open_off_order(client, world):
    order = await placed_order(client, world, ("bolt", 10, "1"), ("nut", 4, "1"))
    other = await placed_order(client, world, ("bolt", 5, "1"))
    assert (await receive(client, order, (0, 3))).status_code == 200
    assert (await levels(client, world["main"]))[world["bolt"]] == {"quantity": 3, "on_order": 12}
    cancelled = await client.post(f"{ORDERS}/{order['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["closed_at"] is not None
    assert [(ln["received"], ln["open"]) for ln in body["lines"]] == [(3, 0), (0, 0)]
    # What arrived stays; the other order's units stay on order.
    assert await levels(client, world["main"]) == {
        world["bolt"]: {"quantity": 3, "on_order": 5},
        world["nut"]: {"quantity": 0, "on_order": 0},
    }
    draft = (await client.post(ORDERS, json=order_body(world, ("nut", 1, "1")))).json()
    assert (await client.post(f"{ORDERS}/{draft['id']}/cancel")).json()["status"] == "cancelled"
    assert (await levels(client, world["main"]))[world["nut"]]["on_order"] == 0
    assert (await client.post(f"{ORDERS}/{other['id']}/cancel")).status_code == 200
    assert (await levels(client, world["main"]))[world["bolt"]]["on_order"] == 0


@pytest.mark.parametrize(
    ("steps", "action", "status"),
    [
        ([], "receive", "draft"),
        (["place"], "place", "placed"),
        (["place"], "edit", "placed"),
        (["place", "receive all"], "cancel", "received"),
        (["cancel"], "place", "cancelled"),
        (["cancel"], "cancel", "cancelled"),
        (["place", "cancel"], "receive", "cancelled"),
    ],
)
async def test_an_illegal_step_is_a_409_with_the_current_status(
    client, world, steps, action, status
):
    order = (await client.post(ORDERS, json=order_body(world, ("bolt", 2, "1")))).json()
    line = {"line_id": order["lines"][0]["id"], "quantity": 2}
    calls = {
        "place": lambda: client.post(f"{ORDERS}/{order['id']}/place"),
        "cancel": lambda: client.post(f"{ORDERS}/{order['id']}/cancel"),
        "edit": lambda: client.patch(f"{ORDERS}/{order['id']}", json={"reference": "x"}),
        "receive": lambda: client.post(
            f"{ORDERS}/{order['id']}/receive", json={"lines": [{**line, "quantity": 1}]}
        ),
        "receive all": lambda: client.post(
            f"{ORDERS}/{order['id']}/receive", json={"lines": [line]}
        ),
    }
    for step in steps:
        assert (await calls[step]()).status_code == 200
    before = (await client.get(f"{ORDERS}/{order['id']}")).json()
    stock_before = await levels(client, world["main"])
    body = assert_problem(await calls[action](), 409)
    assert body["type"] == "urn:inventory:problem:invalid-transition"
    assert body["current_status"] == status
    assert status in body["detail"]
    assert (await client.get(f"{ORDERS}/{order['id']}")).json() == before
    assert await levels(client, world["main"]) == stock_before


def _line(**fields: Any) -> dict[str, Any]:
    """A line of one bolt at 1.00, with ``fields`` changed (None: left out)."""
    line = {"product_id": "@bolt", "quantity": 1, "unit_cost": "1"} | fields
    return {"lines": [{k: v for k, v in line.items() if v is not None}]}


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"supplier_id": 999_999}, ["body", "supplier_id"]),
        ({"warehouse_id": 999_999}, ["body", "warehouse_id"]),
        (_line(product_id=999_999), ["body", "lines", 0, "product_id"]),
        (_line(quantity=0), ["body", "lines", 0, "quantity"]),
        (_line(unit_cost="-0.01"), ["body", "lines", 0, "unit_cost"]),
        (_line(unit_cost="0.00001"), ["body", "lines", 0, "unit_cost"]),
        (_line(unit_cost=None), ["body", "lines", 0, "unit_cost"]),
        ({"lines": []}, ["body", "lines"]),
        ({"expected_on": "soon"}, ["body", "expected_on"]),
        ({"reference": "x" * 101}, ["body", "reference"]),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_creates_nothing(client, world, change, loc):
    if "lines" in change:
        bolt = {"product_id": world["bolt"]}
        change = {
            "lines": [ln | bolt if ln["product_id"] == "@bolt" else ln for ln in change["lines"]]
        }
    refused = await client.post(ORDERS, json=order_body(world, ("bolt", 1, "1")) | change)
    body = assert_problem(refused, 422)
    assert loc in [e["loc"] for e in body["errors"]]
    assert (await client.get(ORDERS)).json()["items"] == []
    made = await client.post(ORDERS, json=order_body(world, ("bolt", 1, "1")))
    assert made.json()["number"] == "PO-000001"


async def test_inactive_entries_and_missing_orders_are_refused(client, world):
    await client.patch(f"{API}/warehouses/{world['east']}", json={"is_active": False})
    to_east = order_body(world, ("bolt", 1, "1")) | {"warehouse_id": world["east"]}
    assert_problem(await client.post(ORDERS, json=to_east), 409)
    draft = (await client.post(ORDERS, json=order_body(world, ("nut", 1, "1")))).json()
    await client.patch(f"{API}/products/{world['nut']}", json={"is_active": False})
    assert_problem(await client.post(ORDERS, json=order_body(world, ("nut", 1, "1"))), 409)
    refused = await client.post(f"{ORDERS}/{draft['id']}/place")
    assert "inactive" in assert_problem(refused, 409)["detail"]
    assert (await client.get(f"{ORDERS}/{draft['id']}")).json()["status"] == "draft"
    for method, path in [
        ("GET", ""),
        ("PATCH", ""),
        ("POST", "/place"),
        ("POST", "/cancel"),
        ("POST", "/receive"),
    ]:
        body = {"lines": [{"line_id": 1, "quantity": 1}]} if path == "/receive" else {}
        assert_problem(await client.request(method, f"{ORDERS}/999999{path}", json=body), 404)
    assert_problem(await client.get(f"{ORDERS}/0"), 422)


async def test_a_receipt_naming_a_line_of_another_order_or_twice_is_a_422(client, world):
    order = await placed_order(client, world, ("bolt", 5, "1"))
    other = await placed_order(client, world, ("nut", 5, "1"))
    line = order["lines"][0]["id"]
    for lines, loc, kind in [
        (
            [{"line_id": line, "quantity": 1}, {"line_id": other["lines"][0]["id"], "quantity": 1}],
            ["body", "lines", 1, "line_id"],
            "missing_reference",
        ),
        (
            [{"line_id": line, "quantity": 1}, {"line_id": line, "quantity": 1}],
            ["body", "lines", 1, "line_id"],
            "duplicate",
        ),
        ([{"line_id": line, "quantity": 0}], ["body", "lines", 0, "quantity"], None),
        ([], ["body", "lines"], None),
    ]:
        refused = await client.post(f"{ORDERS}/{order['id']}/receive", json={"lines": lines})
        errors = assert_problem(refused, 422)["errors"]
        assert loc in [e["loc"] for e in errors], errors
        if kind:
            assert kind in [e["type"] for e in errors]
    assert await receipts_of(client, order["number"]) == []
    assert (await levels(client, world["main"]))[world["bolt"]] == {"quantity": 0, "on_order": 5}


async def test_a_repeated_receipt_with_the_same_key_is_answered_once(client, world):
    order = await placed_order(client, world, ("bolt", 5, "1"))
    first = await receive(client, order, (0, 2), **{"Idempotency-Key": "dock-7"})
    assert first.status_code == 200, first.text
    again = await receive(client, order, (0, 2), **{"Idempotency-Key": "dock-7"})
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(await receipts_of(client, order["number"])) == 1
    assert (await levels(client, world["main"]))[world["bolt"]] == {"quantity": 2, "on_order": 3}
    other_body = await receive(client, order, (0, 1), **{"Idempotency-Key": "dock-7"})
    assert_problem(other_body, 422)
    # The same key and lines for another order are another request.
    second = await placed_order(client, world, ("bolt", 5, "1"))
    lines = {"lines": [{"line_id": order["lines"][0]["id"], "quantity": 2}]}
    elsewhere = await client.post(
        f"{ORDERS}/{second['id']}/receive", json=lines, headers={"Idempotency-Key": "dock-7"}
    )
    assert_problem(elsewhere, 422)
    assert "idempotent-replayed" not in elsewhere.headers


async def test_lists_filter_by_status_and_supplier_newest_first(client, world):
    other = (await client.post(f"{API}/suppliers", json={"name": "Bolt Bros"})).json()
    placed = await placed_order(client, world, ("bolt", 1, "1"))
    draft = (await client.post(ORDERS, json=order_body(world, ("nut", 1, "1")))).json()
    theirs = (
        await client.post(
            ORDERS, json=order_body(world, ("nut", 1, "1")) | {"supplier_id": other["id"]}
        )
    ).json()
    every = (await client.get(ORDERS)).json()
    assert [o["id"] for o in every["items"]] == [theirs["id"], draft["id"], placed["id"]]
    assert every["next_cursor"] is None
    by_status = (await client.get(ORDERS, params={"status": "placed"})).json()["items"]
    assert [o["id"] for o in by_status] == [placed["id"]]
    by_supplier = (await client.get(ORDERS, params={"supplier_id": other["id"]})).json()
    assert [o["id"] for o in by_supplier["items"]] == [theirs["id"]]
    page = (await client.get(ORDERS, params={"limit": 2})).json()
    rest = (await client.get(ORDERS, params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert [o["id"] for o in page["items"] + rest["items"]] == [o["id"] for o in every["items"]]
    assert_problem(await client.get(ORDERS, params={"status": "lost"}), 422)


async def test_on_order_is_null_for_levels_as_of_a_past_moment(client, world):
    await placed_order(client, world, ("bolt", 5, "1"))
    manual = {"product_id": world["bolt"], "warehouse_id": world["main"], "kind": "receipt"}
    await client.post(f"{API}/stock/movements", json=manual | {"quantity": 2})
    now = (await client.get(f"{API}/stock")).json()["items"][0]
    assert now["on_order"] == 5
    then = (await client.get(f"{API}/stock", params={"as_of": "2999-01-01T00:00:00Z"})).json()
    assert then["items"][0]["on_order"] is None
    assert then["items"][0]["quantity"] == 2

"""The stock ledger over REST: movements, transfers, levels, the ledger and bad input."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from inventory.models import Role
from tests.helpers import (
    API,
    assert_ledger_consistent,
    assert_problem,
    collect_pages,
    create,
    create_product,
    error_locs,
)

MOVEMENTS = f"{API}/stock/movements"
TRANSFERS = f"{API}/stock/transfers"
LEVELS = f"{API}/stock"


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    main = await create(client, "/warehouses", code="MAIN", name="Main")
    east = await create(client, "/warehouses", code="EAST", name="East")
    product = await create_product(client, "BOLT-1", reorder_level=5)
    return {"main": main["id"], "east": east["id"], "product": product["id"]}


async def move(
    client: httpx.AsyncClient, world: dict[str, Any], kind: str, quantity: Any, **extra: Any
) -> httpx.Response:
    body = {"product_id": world["product"], "warehouse_id": world["main"], "kind": kind}
    return await client.post(MOVEMENTS, json=body | {"quantity": quantity} | extra)


async def level(client: httpx.AsyncClient, product_id: int, warehouse_id: int) -> int:
    page = (
        await client.get(LEVELS, params={"product_id": product_id, "warehouse_id": warehouse_id})
    ).json()
    return int(page["items"][0]["quantity"]) if page["items"] else 0


async def ledger(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    return await collect_pages(client, MOVEMENTS, **params)


async def test_receipt_shipment_adjustment_and_the_signed_ledger(client, world, accounts, engine):
    receipt = await move(client, world, "receipt", 10, reference="PO-1", note="first delivery")
    assert receipt.status_code == 201, receipt.text
    body = receipt.json()
    assert body["kind"] == "receipt"
    assert body["quantity"] == 10
    assert body["balance"] == 10
    assert body["reference"] == "PO-1"
    assert body["note"] == "first delivery"
    assert body["user_id"] == accounts[Role.admin].id
    assert body["transfer_id"] is None

    shipment = await move(client, world, "shipment", 3)
    assert shipment.json()["quantity"] == -3
    adjustment = await move(client, world, "adjustment", -2, note="damaged")
    assert adjustment.json()["quantity"] == -2
    assert (await move(client, world, "adjustment", 4)).json()["quantity"] == 4

    assert await level(client, world["product"], world["main"]) == 9
    entries = await ledger(client)
    assert [(e["kind"], e["quantity"], e["balance"]) for e in entries] == [
        ("adjustment", 4, 9),
        ("adjustment", -2, 5),
        ("shipment", -3, 7),
        ("receipt", 10, 10),
    ]
    await assert_ledger_consistent(engine)


async def test_stock_level_shape(client, world):
    await move(client, world, "receipt", 7)
    page = (await client.get(LEVELS)).json()
    assert page["next_cursor"] is None
    [item] = page["items"]
    assert set(item) == {
        "product_id",
        "warehouse_id",
        "quantity",
        "reserved",
        "available",
        "on_order",
        "reorder_level",
        "updated_at",
    }
    assert item["quantity"] == 7
    assert (item["reserved"], item["available"], item["on_order"]) == (0, 7, 0)
    assert item["reorder_level"] == 5


async def test_clerk_may_record_viewer_may_not(anonymous, accounts, world):
    body = {"product_id": world["product"], "warehouse_id": world["main"], "kind": "receipt"}
    clerk = await anonymous.post(
        MOVEMENTS, json=body | {"quantity": 2}, headers=accounts[Role.clerk].headers
    )
    assert clerk.status_code == 201
    assert clerk.json()["user_id"] == accounts[Role.clerk].id
    viewer = await anonymous.post(
        MOVEMENTS, json=body | {"quantity": 2}, headers=accounts[Role.viewer].headers
    )
    assert_problem(viewer, 403)
    levels = await anonymous.get(LEVELS, headers=accounts[Role.viewer].headers)
    assert levels.json()["items"][0]["quantity"] == 2


async def test_oversell_is_409_naming_available_and_requested_and_writes_nothing(
    client, world, engine
):
    await move(client, world, "receipt", 5)
    before = await ledger(client)
    for kind, quantity in (("shipment", 6), ("adjustment", -6)):
        response = await move(client, world, kind, quantity)
        body = assert_problem(response, 409)
        assert body["available"] == 5
        assert body["requested"] == 6
        assert body["type"] == "urn:inventory:problem:insufficient-stock"
    assert await level(client, world["product"], world["main"]) == 5
    assert await ledger(client) == before
    await assert_ledger_consistent(engine)


async def test_shipping_from_a_warehouse_with_no_stock_is_409_and_creates_no_level(client, world):
    body = assert_problem(await move(client, world, "shipment", 1), 409)
    assert body["available"] == 0
    assert (await client.get(LEVELS)).json()["items"] == []


async def test_shipping_everything_leaves_zero(client, world, engine):
    await move(client, world, "receipt", 4)
    assert (await move(client, world, "shipment", 4)).status_code == 201
    assert await level(client, world["product"], world["main"]) == 0
    await assert_ledger_consistent(engine)


@pytest.mark.parametrize(
    ("kind", "quantity", "loc"),
    [
        ("receipt", 0, "quantity"),
        ("receipt", -1, "quantity"),
        ("shipment", 0, "quantity"),
        ("shipment", -5, "quantity"),
        ("adjustment", 0, "quantity"),
        ("receipt", True, "quantity"),
        ("receipt", "5", "quantity"),
        ("receipt", 1.5, "quantity"),
        ("receipt", 2**31, "quantity"),
        ("adjustment", -(2**31), "quantity"),
        ("receipt", None, "quantity"),
        ("transfer_in", 5, "kind"),
        ("transfer_out", 5, "kind"),
        ("theft", 5, "kind"),
        (5, 5, "kind"),
    ],
)
async def test_bad_movements_are_422_and_write_nothing(client, world, kind, quantity, loc):
    response = await move(client, world, kind, quantity)
    assert error_locs(response) == [["body", loc]]
    assert await ledger(client) == []


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"product_id": None}, "product_id"),
        ({"product_id": "1"}, "product_id"),
        ({"warehouse_id": 0}, "warehouse_id"),
        ({"warehouse_id": 2**31}, "warehouse_id"),
        ({"reference": "x" * 101}, "reference"),
        ({"user_id": 1}, "user_id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
    ],
)
async def test_bad_movement_fields_are_422(client, world, change, loc):
    body = {"product_id": world["product"], "warehouse_id": world["main"], "kind": "receipt"}
    response = await client.post(MOVEMENTS, json=body | {"quantity": 1} | change)
    assert error_locs(response) == [["body", loc]]
    assert await ledger(client) == []


async def test_missing_fields_are_all_reported(client):
    response = await client.post(MOVEMENTS, json={})
    assert sorted(error_locs(response)) == [
        ["body", "kind"],
        ["body", "product_id"],
        ["body", "quantity"],
        ["body", "warehouse_id"],
    ]


@pytest.mark.parametrize("field", ["product_id", "warehouse_id"])
async def test_unknown_product_or_warehouse_is_404(client, world, field):
    response = await move(client, world, "receipt", 1, **{field: 99999})
    body = assert_problem(response, 404)
    assert "99999" in body["detail"]
    assert await ledger(client) == []


async def test_inactive_product_is_409(client, world):
    await move(client, world, "receipt", 3)
    await client.patch(f"{API}/products/{world['product']}", json={"is_active": False})
    for kind, quantity in (("receipt", 1), ("shipment", 1)):
        assert_problem(await move(client, world, kind, quantity), 409)
    assert len(await ledger(client)) == 1


async def test_inactive_warehouse_ships_out_but_receives_nothing(client, world):
    await move(client, world, "receipt", 3)
    await client.patch(f"{API}/warehouses/{world['main']}", json={"is_active": False})
    assert_problem(await move(client, world, "receipt", 1), 409)
    assert_problem(await move(client, world, "adjustment", 1), 409)
    assert (await move(client, world, "shipment", 3)).status_code == 201


async def test_level_cannot_overflow(client, world):
    assert (await move(client, world, "receipt", 2**31 - 1)).status_code == 201
    assert_problem(await move(client, world, "receipt", 1), 409)
    assert await level(client, world["product"], world["main"]) == 2**31 - 1


async def test_low_stock_event_when_a_level_crosses_the_reorder_level(client, world, caplog):
    await move(client, world, "receipt", 8)
    caplog.set_level(logging.WARNING, logger="inventory.stock.service")
    await move(client, world, "shipment", 2)  # 6: still above 5
    assert "low stock" not in caplog.text
    await move(client, world, "shipment", 1)  # 5: at the reorder level
    assert f"low stock: product {world['product']} in warehouse {world['main']} is at 5" in (
        caplog.text
    )
    caplog.clear()
    await move(client, world, "shipment", 1)  # 4: already below, no new event
    assert "low stock" not in caplog.text


async def test_below_reorder_levels(client, world):
    other = await create_product(client, "NUT-1", reorder_level=0)
    await move(client, world, "receipt", 5)  # at 5 = reorder level: below
    await move(client, world, "receipt", 6, warehouse_id=world["east"])  # above
    await move(client, world, "receipt", 1, product_id=other["id"])  # 1 > 0
    low = (await client.get(LEVELS, params={"below_reorder": "true"})).json()["items"]
    assert [(i["product_id"], i["warehouse_id"]) for i in low] == [
        (world["product"], world["main"])
    ]
    high = (await client.get(LEVELS, params={"below_reorder": "false"})).json()["items"]
    assert len(high) == 2


async def test_level_filters_and_pagination(client, world):
    await move(client, world, "receipt", 1)
    await move(client, world, "receipt", 2, warehouse_id=world["east"])
    assert len(await collect_pages(client, LEVELS, limit=1)) == 2
    east = (await client.get(LEVELS, params={"warehouse_id": world["east"]})).json()["items"]
    assert [i["quantity"] for i in east] == [2]
    assert (await client.get(LEVELS, params={"product_id": 424242})).json()["items"] == []


async def test_ledger_filters(client, world):
    await move(client, world, "receipt", 10)
    await move(client, world, "shipment", 1, warehouse_id=world["main"])
    await move(client, world, "receipt", 4, warehouse_id=world["east"])
    assert len(await ledger(client, kind="receipt")) == 2
    assert len(await ledger(client, warehouse_id=world["east"])) == 1
    assert len(await ledger(client, product_id=world["product"], limit=1)) == 3
    entries = await ledger(client)
    newest = entries[0]["created_at"]
    assert [e["id"] for e in await ledger(client, since=newest)] == [entries[0]["id"]]
    assert len(await ledger(client, until=newest)) == 2
    assert await ledger(client, since="2999-01-01T00:00:00") == []


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"kind": "theft"}, "kind"),
        ({"since": "yesterday"}, "since"),
        ({"product_id": "x"}, "product_id"),
        ({"limit": "201"}, "limit"),
        ({"cursor": "nope"}, "cursor"),
    ],
)
async def test_bad_ledger_queries_are_422(client, params, loc):
    assert error_locs(await client.get(MOVEMENTS, params=params)) == [["query", loc]]


async def transfer(client: httpx.AsyncClient, world: dict[str, Any], quantity: Any, **extra: Any):
    body = {
        "product_id": world["product"],
        "from_warehouse_id": world["main"],
        "to_warehouse_id": world["east"],
        "quantity": quantity,
    }
    return await client.post(TRANSFERS, json=body | extra)


async def test_transfer_moves_both_legs(client, world, engine):
    await move(client, world, "receipt", 10)
    response = await transfer(client, world, 4, reference="T-1")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["quantity"] == 4
    assert body["reference"] == "T-1"
    out_leg, in_leg = body["movements"]
    assert (out_leg["kind"], out_leg["quantity"], out_leg["balance"], out_leg["warehouse_id"]) == (
        "transfer_out",
        -4,
        6,
        world["main"],
    )
    assert (in_leg["kind"], in_leg["quantity"], in_leg["balance"], in_leg["warehouse_id"]) == (
        "transfer_in",
        4,
        4,
        world["east"],
    )
    assert out_leg["transfer_id"] == in_leg["transfer_id"] == body["id"]
    assert await level(client, world["product"], world["main"]) == 6
    assert await level(client, world["product"], world["east"]) == 4
    await assert_ledger_consistent(engine)


async def test_transfer_beyond_stock_moves_neither_leg(client, world, engine):
    await move(client, world, "receipt", 3)
    body = assert_problem(await transfer(client, world, 4), 409)
    assert (body["available"], body["requested"]) == (3, 4)
    assert await level(client, world["product"], world["main"]) == 3
    assert await level(client, world["product"], world["east"]) == 0
    assert len(await ledger(client)) == 1
    await assert_ledger_consistent(engine)


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"to_warehouse_id": "same"}, "to_warehouse_id"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": -1}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": "2"}, "quantity"),
        ({"quantity": 2**31}, "quantity"),
        ({"from_warehouse_id": None}, "from_warehouse_id"),
        ({"kind": "transfer_out"}, "kind"),
    ],
)
async def test_bad_transfers_are_422_and_write_nothing(client, world, change, loc):
    await move(client, world, "receipt", 3)
    change = dict(change)  # the parameter is shared by both backends' runs
    if change.get("to_warehouse_id") == "same":
        change["to_warehouse_id"] = world["main"]
    quantity = change.pop("quantity", 1)
    assert error_locs(await transfer(client, world, quantity, **change)) == [["body", loc]]
    assert len(await ledger(client)) == 1


async def test_transfer_to_unknown_or_inactive_warehouse(client, world):
    await move(client, world, "receipt", 3)
    assert_problem(await transfer(client, world, 1, to_warehouse_id=99999), 404)
    await client.patch(f"{API}/warehouses/{world['east']}", json={"is_active": False})
    assert_problem(await transfer(client, world, 1), 409)
    assert len(await ledger(client)) == 1


async def test_movements_keep_products_and_warehouses_from_being_deleted(client, world):
    await move(client, world, "receipt", 1)
    assert_problem(await client.delete(f"{API}/products/{world['product']}"), 409)
    assert_problem(await client.delete(f"{API}/warehouses/{world['main']}"), 409)


@pytest.mark.parametrize(
    ("param", "value"),
    [("since", "9999-12-31T23:59:59-14:00"), ("until", "0001-01-01T00:00:00+14:00")],
)
async def test_timestamps_outside_utc_range_are_422(client, param, value):
    assert error_locs(await client.get(MOVEMENTS, params={param: value})) == [["query", param]]


async def test_timestamps_with_offsets_are_compared_in_utc(client, world):
    await move(client, world, "receipt", 1)
    [entry] = await ledger(client)
    created = datetime.fromisoformat(entry["created_at"])
    an_hour_ahead_east = (created + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=3)))
    assert len(await ledger(client, until=an_hour_ahead_east.isoformat())) == 1
    assert await ledger(client, since=an_hour_ahead_east.isoformat()) == []


def _ledger_cursor(last_id: int) -> str:
    raw = json.dumps(["-id", last_id, last_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_ledger_cursors_take_64_bit_ids(client, world):
    await move(client, world, "receipt", 1)
    page = await client.get(MOVEMENTS, params={"cursor": _ledger_cursor(2**40)})
    assert page.status_code == 200
    assert len(page.json()["items"]) == 1  # every id is below 2**40
    too_big = await client.get(MOVEMENTS, params={"cursor": _ledger_cursor(2**63)})
    assert error_locs(too_big) == [["query", "cursor"]]


async def test_low_stock_event_from_a_transfer(client, world, caplog):
    await move(client, world, "receipt", 7)
    caplog.set_level(logging.WARNING, logger="inventory.stock.service")
    assert (await transfer(client, world, 2)).status_code == 201  # MAIN: 7 -> 5
    assert f"product {world['product']} in warehouse {world['main']} is at 5" in caplog.text


async def test_a_levels_entries_are_stamped_in_the_order_they_changed_it(client, world, engine):
    """ "The level at T" follows the stamps, so they must follow the lock order: each entry's
    time is at or after the one before it on that level, and the level's updated_at is its
    last entry's."""
    await move(client, world, "receipt", 500)
    moves = [move(client, world, "shipment", 1) for _ in range(20)]
    moves += [move(client, world, "receipt", 1) for _ in range(20)]
    assert all(r.status_code == 201 for r in await asyncio.gather(*moves))
    entries = sorted(await ledger(client), key=lambda e: e["id"])
    stamps = [datetime.fromisoformat(e["created_at"]) for e in entries]
    assert stamps == sorted(stamps)
    assert [e["balance"] for e in entries][-1] == 500
    page = await client.get(LEVELS, params={"product_id": world["product"]})
    assert datetime.fromisoformat(page.json()["items"][0]["updated_at"]) == stamps[-1]

"""Reservations over REST: holding all lines or none, confirming, releasing, expiring, and
what holds do to the stock every other write sees."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from inventory.models import Role
from tests.helpers import API, assert_ledger_consistent, assert_problem

RESERVATIONS = f"{API}/reservations"
MOVEMENTS = f"{API}/stock/movements"
LEVELS = f"{API}/stock"


async def level(client: httpx.AsyncClient, product_id: int, warehouse_id: int) -> dict[str, Any]:
    page = await client.get(LEVELS, params={"product_id": product_id, "warehouse_id": warehouse_id})
    [item] = page.json()["items"]
    return {k: item[k] for k in ("quantity", "reserved", "available")}


async def hold(client: httpx.AsyncClient, *lines: dict[str, Any], **extra: Any) -> httpx.Response:
    return await client.post(RESERVATIONS, json={"lines": list(lines), **extra})


async def test_a_hold_lowers_available_not_quantity(client, world):
    held = await hold(
        client,
        {"product_id": world["bolt"], "warehouse_id": world["main"], "quantity": 4},
        reference="cart-1",
    )
    assert held.status_code == 201, held.text
    body = held.json()
    assert body["status"] == "held"
    assert body["reference"] == "cart-1"
    assert body["movement_ids"] == []
    assert body["lines"] == [
        {"product_id": world["bolt"], "warehouse_id": world["main"], "quantity": 4}
    ]
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 10,
        "reserved": 4,
        "available": 6,
    }
    fetched = await client.get(f"{RESERVATIONS}/{body['id']}")
    assert fetched.json() == body


async def test_all_lines_or_none_and_each_short_line_is_named(client, world):
    refused = await hold(
        client,
        {"product_id": world["bolt"], "warehouse_id": world["main"], "quantity": 2},
        {"product_id": world["nut"], "warehouse_id": world["main"], "quantity": 5},
        {"product_id": world["bolt"], "warehouse_id": world["east"], "quantity": 9},
    )
    assert_problem(refused, 409)
    assert refused.json()["errors"] == [
        {"loc": ["body", "lines", 1], "available": 3, "requested": 5},
        {"loc": ["body", "lines", 2], "available": 4, "requested": 9},
    ]
    assert (await level(client, world["bolt"], world["main"]))["reserved"] == 0
    assert (await client.get(RESERVATIONS)).json()["items"] == []


async def test_a_line_without_a_warehouse_takes_the_one_with_most_available(client, world):
    first = await hold(client, {"product_id": world["bolt"], "quantity": 7})
    assert first.json()["lines"][0]["warehouse_id"] == world["main"]
    # main now has 3 available, east 4.
    second = await hold(client, {"product_id": world["bolt"], "quantity": 1})
    assert second.json()["lines"][0]["warehouse_id"] == world["east"]
    refused = await hold(client, {"product_id": world["bolt"], "quantity": 5})
    assert_problem(refused, 409)
    assert refused.json()["errors"][0]["available"] == 3


async def test_holds_protect_their_units_from_other_writes(client, world):
    await hold(client, {"product_id": world["bolt"], "warehouse_id": world["main"], "quantity": 8})
    body = {"product_id": world["bolt"], "warehouse_id": world["main"]}
    shipment = await client.post(MOVEMENTS, json=body | {"kind": "shipment", "quantity": 3})
    assert_problem(shipment, 409)
    assert (shipment.json()["available"], shipment.json()["requested"]) == (2, 3)
    adjustment = await client.post(MOVEMENTS, json=body | {"kind": "adjustment", "quantity": -3})
    assert_problem(adjustment, 409)
    transfer = await client.post(
        f"{API}/stock/transfers",
        json={
            "product_id": world["bolt"],
            "from_warehouse_id": world["main"],
            "to_warehouse_id": world["east"],
            "quantity": 3,
        },
    )
    assert_problem(transfer, 409)
    allowed = await client.post(MOVEMENTS, json=body | {"kind": "shipment", "quantity": 2})
    assert allowed.status_code == 201
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 8,
        "reserved": 8,
        "available": 0,
    }


async def test_confirm_ships_once_and_release_after_confirm_is_refused(client, world, engine):
    held = (
        await hold(
            client,
            {"product_id": world["bolt"], "warehouse_id": world["main"], "quantity": 4},
            {"product_id": world["nut"], "quantity": 1},
            reference="order-9",
        )
    ).json()
    confirmed = await client.post(f"{RESERVATIONS}/{held['id']}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["status"] == "confirmed"
    assert len(body["movement_ids"]) == 2
    again = await client.post(f"{RESERVATIONS}/{held['id']}/confirm")
    assert again.json() == body
    ledger = (await client.get(MOVEMENTS, params={"kind": "shipment"})).json()["items"]
    assert sorted(m["id"] for m in ledger) == sorted(body["movement_ids"])
    assert {m["reference"] for m in ledger} == {"order-9"}
    assert await level(client, world["bolt"], world["main"]) == {
        "quantity": 6,
        "reserved": 0,
        "available": 6,
    }
    assert_problem(await client.post(f"{RESERVATIONS}/{held['id']}/release"), 409)
    await assert_ledger_consistent(engine)


async def test_release_gives_units_back_and_again_changes_nothing(client, world):
    held = (await hold(client, {"product_id": world["nut"], "quantity": 3})).json()
    released = await client.post(f"{RESERVATIONS}/{held['id']}/release")
    assert released.status_code == 200
    assert released.json()["status"] == "released"
    again = await client.post(f"{RESERVATIONS}/{held['id']}/release")
    assert again.json() == released.json()
    assert (await level(client, world["nut"], world["main"]))["available"] == 3
    assert_problem(await client.post(f"{RESERVATIONS}/{held['id']}/confirm"), 409)


async def test_an_expired_hold_frees_its_units_without_any_write(client, world):
    held = (
        await hold(
            client,
            {"product_id": world["nut"], "warehouse_id": world["main"], "quantity": 3},
            ttl_seconds=1,
        )
    ).json()
    assert (await level(client, world["nut"], world["main"]))["available"] == 0
    await asyncio.sleep(1.2)
    assert await level(client, world["nut"], world["main"]) == {
        "quantity": 3,
        "reserved": 0,
        "available": 3,
    }
    assert (await client.get(f"{RESERVATIONS}/{held['id']}")).json()["status"] == "expired"
    assert_problem(await client.post(f"{RESERVATIONS}/{held['id']}/confirm"), 409)
    listed = (await client.get(RESERVATIONS, params={"status": "expired"})).json()["items"]
    assert [r["id"] for r in listed] == [held["id"]]
    assert (await client.get(RESERVATIONS, params={"status": "held"})).json()["items"] == []


async def test_bad_requests_are_refused_with_their_field(client, world):
    for body, loc in (
        ({"lines": []}, ["body", "lines"]),
        (
            {"lines": [{"product_id": world["bolt"], "quantity": 0}]},
            ["body", "lines", 0, "quantity"],
        ),
        (
            {"lines": [{"product_id": world["bolt"], "quantity": 1}], "ttl_seconds": 86_401},
            ["body", "ttl_seconds"],
        ),
    ):
        refused = await client.post(RESERVATIONS, json=body)
        assert_problem(refused, 422)
        assert loc in [e["loc"] for e in refused.json()["errors"]], refused.json()
    missing = await hold(client, {"product_id": 999_999, "quantity": 1})
    assert_problem(missing, 404)
    assert_problem(await client.get(f"{RESERVATIONS}/999999"), 404)


async def test_viewer_reads_clerk_holds(anonymous, accounts, world):
    line = {"product_id": world["nut"], "quantity": 1}
    viewer = accounts[Role.viewer].headers
    assert_problem(await anonymous.post(RESERVATIONS, json={"lines": [line]}, headers=viewer), 403)
    clerk = accounts[Role.clerk].headers
    held = await anonymous.post(RESERVATIONS, json={"lines": [line]}, headers=clerk)
    assert held.status_code == 201
    assert (await anonymous.get(RESERVATIONS, headers=viewer)).status_code == 200


async def test_an_idempotency_key_holds_once_and_replays_a_refusal(client, world):
    line = {"product_id": world["nut"], "warehouse_id": world["main"], "quantity": 2}
    key = {"Idempotency-Key": "cart-77-hold"}
    first = await client.post(RESERVATIONS, json={"lines": [line]}, headers=key)
    again = await client.post(RESERVATIONS, json={"lines": [line]}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len((await client.get(RESERVATIONS)).json()["items"]) == 1

    # 1 of 3 is free now; after the release all 3 are, yet the key keeps its refusal.
    too_many = {"lines": [line | {"quantity": 3}]}
    refusal_key = {"Idempotency-Key": "cart-78-hold"}
    refused = await client.post(RESERVATIONS, json=too_many, headers=refusal_key)
    assert_problem(refused, 409)
    await client.post(f"{RESERVATIONS}/{first.json()['id']}/release")
    replayed = await client.post(RESERVATIONS, json=too_many, headers=refusal_key)
    assert replayed.status_code == 409
    assert replayed.json()["errors"] == refused.json()["errors"]
    assert replayed.headers["Idempotent-Replayed"] == "true"

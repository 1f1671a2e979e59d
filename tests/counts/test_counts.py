"""Stock counts over REST: opening, recording lines, finishing into adjustments, cancelling."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from inventory.models import Role
from tests.helpers import (
    API,
    assert_ledger_consistent,
    assert_problem,
    collect_pages,
    error_locs,
)

COUNTS = f"{API}/counts"
MOVEMENTS = f"{API}/stock/movements"


async def move(
    client: httpx.AsyncClient, product_id: int, warehouse_id: int, kind: str, quantity: int
) -> dict[str, Any]:
    response = await client.post(
        MOVEMENTS,
        json={
            "product_id": product_id,
            "warehouse_id": warehouse_id,
            "kind": kind,
            "quantity": quantity,
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def level(client: httpx.AsyncClient, product_id: int, warehouse_id: int) -> int:
    page = (
        await client.get(
            f"{API}/stock", params={"product_id": product_id, "warehouse_id": warehouse_id}
        )
    ).json()
    return int(page["items"][0]["quantity"]) if page["items"] else 0


async def open_count(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(COUNTS, json=body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/api/v1/counts/{response.json()['id']}"
    opened: dict[str, Any] = response.json()
    return opened


async def record(
    client: httpx.AsyncClient, count_id: int, product_id: int, counted: Any
) -> httpx.Response:
    return await client.put(f"{COUNTS}/{count_id}/lines/{product_id}", json={"counted": counted})


def line_of(count: dict[str, Any], product_id: int) -> dict[str, Any]:
    return next(line for line in count["lines"] if line["product_id"] == product_id)


async def test_movements_while_counting_are_neither_lost_nor_counted_twice(client, world, engine):
    """100 on hand; 5 shipped after the count starts but before the shelf is counted (the
    shelf shows it), 3 more after counting (the count cannot show it). Counted 90: the
    ledger said 95 when counted, so 5 are missing, and the level ends at 90 - 3."""
    bolt, main = world["bolt"], world["main"]
    await move(client, bolt, main, "receipt", 100)
    count = await open_count(client, warehouse_id=main)
    assert line_of(count, bolt) == {
        "product_id": bolt,
        "expected": 100,
        "counted": None,
        "counted_at": None,
        "difference": None,
    }
    await move(client, bolt, main, "shipment", 5)
    recorded = await record(client, count["id"], bolt, 90)
    assert recorded.status_code == 200, recorded.text
    line = recorded.json()
    assert (line["expected"], line["counted"], line["difference"]) == (95, 90, -5)
    assert line["counted_at"] is not None
    await move(client, bolt, main, "shipment", 3)

    finished = await client.post(f"{COUNTS}/{count['id']}/finish")
    assert finished.status_code == 200, finished.text
    body = finished.json()
    assert body["status"] == "finished"
    assert body["finished_at"] is not None
    assert line_of(body, bolt)["difference"] == -5
    assert len(body["movement_ids"]) == 1
    assert await level(client, bolt, main) == 87

    adjustments = await collect_pages(client, MOVEMENTS, kind="adjustment")
    assert [(m["id"], m["quantity"], m["balance"], m["reference"]) for m in adjustments] == [
        (body["movement_ids"][0], -5, 87, f"count:{count['id']}")
    ]
    await assert_ledger_consistent(engine)


async def test_a_recount_overwrites_and_uncounted_lines_change_nothing(client, world, engine):
    bolt, nut, main = world["bolt"], world["nut"], world["main"]
    await move(client, bolt, main, "receipt", 10)
    await move(client, nut, main, "receipt", 20)
    count = await open_count(client, warehouse_id=main)
    assert [line["product_id"] for line in count["lines"]] == sorted([bolt, nut])
    first = (await record(client, count["id"], bolt, 4)).json()
    again = (await record(client, count["id"], bolt, 12)).json()
    assert (first["counted"], first["difference"]) == (4, -6)
    assert (again["counted"], again["difference"]) == (12, 2)
    assert again["counted_at"] >= first["counted_at"]

    shown = (await client.get(f"{COUNTS}/{count['id']}")).json()
    assert line_of(shown, bolt)["counted"] == 12
    assert line_of(shown, nut)["counted"] is None

    body = (await client.post(f"{COUNTS}/{count['id']}/finish")).json()
    assert line_of(body, bolt)["difference"] == 2
    assert line_of(body, nut) | {"expected": 20} == line_of(body, nut)
    assert line_of(body, nut)["difference"] is None
    assert len(body["movement_ids"]) == 1
    assert await level(client, bolt, main) == 12
    assert await level(client, nut, main) == 20
    await assert_ledger_consistent(engine)


async def test_a_line_that_agrees_records_no_movement(client, world):
    await move(client, world["bolt"], world["main"], "receipt", 7)
    count = await open_count(client, warehouse_id=world["main"])
    await record(client, count["id"], world["bolt"], 7)
    body = (await client.post(f"{COUNTS}/{count['id']}/finish")).json()
    assert body["movement_ids"] == []
    assert line_of(body, world["bolt"])["difference"] == 0
    assert await collect_pages(client, MOVEMENTS, kind="adjustment") == []


async def test_a_product_never_stocked_there_can_be_counted_by_name(client, world, engine):
    count = await open_count(client, warehouse_id=world["east"], product_ids=[world["glue"]])
    assert count["lines"] == [
        {
            "product_id": world["glue"],
            "expected": 0,
            "counted": None,
            "counted_at": None,
            "difference": None,
        }
    ]
    await record(client, count["id"], world["glue"], 6)
    body = (await client.post(f"{COUNTS}/{count['id']}/finish")).json()
    assert line_of(body, world["glue"])["difference"] == 6
    assert await level(client, world["glue"], world["east"]) == 6
    await assert_ledger_consistent(engine)


async def test_what_a_count_covers(client, world):
    bolt, nut, glue, main = world["bolt"], world["nut"], world["glue"], world["main"]
    for product in (bolt, glue):
        await move(client, product, main, "receipt", 3)
    await move(client, nut, world["east"], "receipt", 3)

    everything = await open_count(client, warehouse_id=main)
    assert [line["product_id"] for line in everything["lines"]] == sorted([bolt, glue])

    by_category = await open_count(client, warehouse_id=main, category_id=world["tools"])
    assert [line["product_id"] for line in by_category["lines"]] == [bolt]

    named = await open_count(client, warehouse_id=main, product_ids=[nut, bolt, nut])
    assert [(li["product_id"], li["expected"]) for li in named["lines"]] == sorted(
        [(bolt, 3), (nut, 0)]
    )

    # An inactive product is left out of "everything", and refused when named.
    await client.patch(f"{API}/products/{glue}", json={"is_active": False})
    again = await open_count(client, warehouse_id=main)
    assert [line["product_id"] for line in again["lines"]] == [bolt]
    refused = await client.post(COUNTS, json={"warehouse_id": main, "product_ids": [glue]})
    assert str(glue) in assert_problem(refused, 409)["detail"]


async def test_bad_openings(client, world):
    main = world["main"]
    both = await client.post(
        COUNTS, json={"warehouse_id": main, "product_ids": [world["bolt"]], "category_id": 1}
    )
    assert error_locs(both) == [["body", "category_id"]]

    unknown_warehouse = await client.post(COUNTS, json={"warehouse_id": 999})
    assert error_locs(unknown_warehouse) == [["body", "warehouse_id"]]
    assert assert_problem(unknown_warehouse, 422)["errors"][0]["type"] == "missing_reference"

    unknown_category = await client.post(COUNTS, json={"warehouse_id": main, "category_id": 999})
    assert error_locs(unknown_category) == [["body", "category_id"]]

    unknown_product = await client.post(
        COUNTS, json={"warehouse_id": main, "product_ids": [world["bolt"], 999]}
    )
    assert error_locs(unknown_product) == [["body", "product_ids", 1]]

    nothing = await client.post(COUNTS, json={"warehouse_id": main})
    assert error_locs(nothing) == [["body", "warehouse_id"]]
    assert assert_problem(nothing, 422)["errors"][0]["type"] == "nothing_to_count"

    for body in (
        {},
        {"warehouse_id": "1"},
        {"warehouse_id": 0},
        {"warehouse_id": main, "product_ids": []},
        {"warehouse_id": main, "product_ids": [0]},
        {"warehouse_id": main, "extra": 1},
    ):
        assert_problem(await client.post(COUNTS, json=body), 422)
    assert (await client.get(COUNTS)).json() == {"items": [], "next_cursor": None}


async def test_bad_lines(client, world):
    await move(client, world["bolt"], world["main"], "receipt", 5)
    count = await open_count(client, warehouse_id=world["main"])
    for counted in (-1, "5", 1.5, None, 2**31):
        assert error_locs(await record(client, count["id"], world["bolt"], counted)) == [
            ["body", "counted"]
        ]
    not_in_count = await record(client, count["id"], world["nut"], 1)
    assert f"product {world['nut']} is not in count" in assert_problem(not_in_count, 404)["detail"]
    assert_problem(await record(client, count["id"], 999, 1), 404)
    assert_problem(await record(client, 999, world["bolt"], 1), 404)
    assert_problem(await record(client, count["id"], 0, 1), 422)
    shown = (await client.get(f"{COUNTS}/{count['id']}")).json()
    assert shown["lines"][0]["counted"] is None


async def test_finish_and_cancel_only_while_open(client, world):
    await move(client, world["bolt"], world["main"], "receipt", 5)
    count = await open_count(client, warehouse_id=world["main"])
    await record(client, count["id"], world["bolt"], 4)
    assert (await client.post(f"{COUNTS}/{count['id']}/finish")).status_code == 200
    assert_problem(await client.post(f"{COUNTS}/{count['id']}/finish"), 409)
    assert_problem(await record(client, count["id"], world["bolt"], 1), 409)
    assert_problem(await client.post(f"{COUNTS}/{count['id']}/cancel"), 409)
    assert await level(client, world["bolt"], world["main"]) == 4  # adjusted once

    other = await open_count(client, warehouse_id=world["main"])
    await record(client, other["id"], world["bolt"], 1)
    cancelled = await client.post(f"{COUNTS}/{other['id']}/cancel")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["finished_at"] is not None
    again = await client.post(f"{COUNTS}/{other['id']}/cancel")
    assert again.status_code == 200
    assert again.json() == body
    assert_problem(await client.post(f"{COUNTS}/{other['id']}/finish"), 409)
    assert_problem(await record(client, other["id"], world["bolt"], 2), 409)
    assert await level(client, world["bolt"], world["main"]) == 4
    assert_problem(await client.post(f"{COUNTS}/999/finish"), 404)
    assert_problem(await client.post(f"{COUNTS}/999/cancel"), 404)


async def test_a_refused_adjustment_refuses_the_whole_finish(client, world, engine):
    """Counted 2 of 10, then 5 shipped: the level (5) cannot lose the 8 the count found
    missing. Nothing is applied, not even the other line's adjustment."""
    bolt, nut, main = world["bolt"], world["nut"], world["main"]
    await move(client, bolt, main, "receipt", 10)
    await move(client, nut, main, "receipt", 10)
    count = await open_count(client, warehouse_id=main)
    await record(client, count["id"], nut, 11)
    await record(client, count["id"], bolt, 2)
    await move(client, bolt, main, "shipment", 5)
    before = await collect_pages(client, MOVEMENTS)

    refused = await client.post(f"{COUNTS}/{count['id']}/finish")
    problem = assert_problem(refused, 409)
    assert problem["type"] == "urn:inventory:problem:insufficient-stock"
    assert (problem["available"], problem["requested"]) == (5, 8)
    assert await collect_pages(client, MOVEMENTS) == before
    shown = (await client.get(f"{COUNTS}/{count['id']}")).json()
    assert shown["status"] == "open"
    assert await level(client, nut, main) == 10
    assert await level(client, bolt, main) == 5
    await assert_ledger_consistent(engine)

    # Recounted, it finishes.
    await record(client, count["id"], bolt, 1)
    finished = await client.post(f"{COUNTS}/{count['id']}/finish")
    assert finished.status_code == 200, finished.text
    assert await level(client, bolt, main) == 1
    assert await level(client, nut, main) == 11
    await assert_ledger_consistent(engine)


async def test_a_count_cannot_take_away_units_that_are_promised(client, world):
    """10 on hand, 6 held: a count that finds 3 would leave less than is promised, so the
    finish is refused until the hold is released."""
    bolt, main = world["bolt"], world["main"]
    await move(client, bolt, main, "receipt", 10)
    line = {"product_id": bolt, "warehouse_id": main, "quantity": 6}
    held = await client.post(f"{API}/reservations", json={"lines": [line]})
    assert held.status_code == 201, held.text
    count = await open_count(client, warehouse_id=main)
    assert (await record(client, count["id"], bolt, 3)).status_code == 200

    refused = await client.post(f"{COUNTS}/{count['id']}/finish")
    problem = assert_problem(refused, 409)
    assert (problem["available"], problem["requested"]) == (4, 7)
    assert await level(client, bolt, main) == 10

    await client.post(f"{API}/reservations/{held.json()['id']}/release")
    finished = await client.post(f"{COUNTS}/{count['id']}/finish")
    assert finished.status_code == 200, finished.text
    assert await level(client, bolt, main) == 3


async def test_listing_filters_and_pages(client, world, viewer):
    await move(client, world["bolt"], world["main"], "receipt", 5)
    await move(client, world["bolt"], world["east"], "receipt", 5)
    first = await open_count(client, warehouse_id=world["main"])
    second = await open_count(client, warehouse_id=world["east"])
    third = await open_count(client, warehouse_id=world["main"])
    await client.post(f"{COUNTS}/{first['id']}/cancel")

    listed = await collect_pages(viewer, COUNTS, limit=1)
    assert [c["id"] for c in listed] == [third["id"], second["id"], first["id"]]
    opened = await collect_pages(viewer, COUNTS, status="open", warehouse_id=world["main"])
    assert [c["id"] for c in opened] == [third["id"]]
    assert (await viewer.get(f"{COUNTS}/{second['id']}")).json() == second
    assert_problem(await viewer.get(f"{COUNTS}/999"), 404)
    assert_problem(await viewer.get(COUNTS, params={"status": "done"}), 422)
    assert_problem(await viewer.get(COUNTS, params={"cursor": "junk"}), 422)


async def test_who_may_do_what(anonymous, accounts, world, client):
    await move(client, world["bolt"], world["main"], "receipt", 5)
    count = await open_count(client, warehouse_id=world["main"])
    viewer, clerk = accounts[Role.viewer].headers, accounts[Role.clerk].headers
    assert_problem(
        await anonymous.post(COUNTS, json={"warehouse_id": world["main"]}, headers=viewer), 403
    )
    line = f"{COUNTS}/{count['id']}/lines/{world['bolt']}"
    assert (await anonymous.put(line, json={"counted": 3}, headers=clerk)).status_code == 200
    finish = f"{COUNTS}/{count['id']}/finish"
    assert_problem(await anonymous.post(finish, headers=clerk), 403)
    opened = await anonymous.post(COUNTS, json={"warehouse_id": world["main"]}, headers=clerk)
    assert opened.status_code == 201
    assert opened.json()["user_id"] == accounts[Role.clerk].id


async def test_concurrent_finishes_and_shipments_apply_once(client, world, engine):
    """Two finishes at once: one finishes, the other is refused; shipments racing the
    finish are kept, and the ledger still sums to the level."""
    bolt, nut, main = world["bolt"], world["nut"], world["main"]
    await move(client, bolt, main, "receipt", 50)
    await move(client, nut, main, "receipt", 50)
    count = await open_count(client, warehouse_id=main)
    await record(client, count["id"], bolt, 40)
    await record(client, count["id"], nut, 45)

    async def ship(product_id: int) -> httpx.Response:
        response: httpx.Response = await client.post(
            MOVEMENTS,
            json={
                "product_id": product_id,
                "warehouse_id": main,
                "kind": "shipment",
                "quantity": 1,
            },
        )
        return response

    finish = f"{COUNTS}/{count['id']}/finish"
    answers = await asyncio.gather(
        client.post(finish), ship(nut), client.post(finish), ship(bolt), ship(nut)
    )
    statuses = [answer.status_code for answer in answers]
    assert sorted(statuses[i] for i in (0, 2)) == [200, 409]
    assert [statuses[i] for i in (1, 3, 4)] == [201, 201, 201]
    assert await level(client, bolt, main) == 40 - 1
    assert await level(client, nut, main) == 45 - 2
    adjustments = await collect_pages(client, MOVEMENTS, kind="adjustment")
    assert sorted(m["quantity"] for m in adjustments) == [-10, -5]
    await assert_ledger_consistent(engine)

"""The sweep of expired holds: it records what already happened (the units were free from
the moment of expiry) and touches no live, confirmed or released reservation."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.jobs import maintenance
from inventory.models import Reservation, ReservationLine, ReservationStatus
from inventory.models.columns import utcnow
from tests.helpers import API, assert_ledger_consistent, assert_problem, create, create_product

RESERVATIONS = f"{API}/reservations"


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, int]:
    main = await create(client, "/warehouses", code="MAIN", name="Main")
    bolt = await create_product(client, "BOLT-1")
    receipt = await client.post(
        f"{API}/stock/movements",
        json={
            "product_id": bolt["id"],
            "warehouse_id": main["id"],
            "kind": "receipt",
            "quantity": 100,
        },
    )
    assert receipt.status_code == 201, receipt.text
    return {"main": main["id"], "bolt": bolt["id"]}


async def hold(
    client: httpx.AsyncClient, world: dict[str, int], quantity: int = 1, **extra: Any
) -> int:
    line = {"product_id": world["bolt"], "warehouse_id": world["main"], "quantity": quantity}
    held = await client.post(RESERVATIONS, json={"lines": [line], **extra})
    assert held.status_code == 201, held.text
    return int(held.json()["id"])


async def stored(engine: AsyncEngine) -> dict[int, tuple[ReservationStatus, bool]]:
    """Each reservation's status as stored (not as read), and whether a line still holds."""
    async with engine.connect() as connection:
        rows = (await connection.execute(select(Reservation.id, Reservation.status))).all()
        holding = set(
            (
                await connection.execute(
                    select(ReservationLine.reservation_id).where(
                        ReservationLine.held_until.is_not(None)
                    )
                )
            ).scalars()
        )
    return {r.id: (ReservationStatus(r.status), r.id in holding) for r in rows}


async def level(client: httpx.AsyncClient, world: dict[str, int]) -> dict[str, Any]:
    page = await client.get(
        f"{API}/stock", params={"product_id": world["bolt"], "warehouse_id": world["main"]}
    )
    [item] = page.json()["items"]
    return {k: item[k] for k in ("quantity", "reserved", "available")}


async def test_the_job_marks_expired_holds_and_nothing_else(
    app: FastAPI, client, world, engine, caplog
):
    live = await hold(client, world, 5)
    confirmed = await hold(client, world, 2)
    released = await hold(client, world, 3)
    assert (await client.post(f"{RESERVATIONS}/{confirmed}/confirm")).status_code == 200
    assert (await client.post(f"{RESERVATIONS}/{released}/release")).status_code == 200
    short = [await hold(client, world, 4, ttl_seconds=1) for _ in range(2)]
    await asyncio.sleep(1.2)
    before = await level(client, world)
    assert before == {"quantity": 98, "reserved": 5, "available": 93}
    assert (await stored(engine))[short[0]] == (ReservationStatus.held, True)

    caplog.set_level(logging.INFO, logger="inventory.jobs.maintenance")
    assert await maintenance.expire_reservations(app.state.db) == 2
    assert "marked 2 reservations expired" in caplog.text
    assert await stored(engine) == {
        live: (ReservationStatus.held, True),
        confirmed: (ReservationStatus.confirmed, False),
        released: (ReservationStatus.released, False),
        short[0]: (ReservationStatus.expired, False),
        short[1]: (ReservationStatus.expired, False),
    }
    assert await level(client, world) == before
    for reservation_id in short:
        read = (await client.get(f"{RESERVATIONS}/{reservation_id}")).json()
        assert read["status"] == "expired"
        assert_problem(await client.post(f"{RESERVATIONS}/{reservation_id}/confirm"), 409)
    assert await maintenance.expire_reservations(app.state.db) == 0
    await assert_ledger_consistent(engine)


async def test_the_job_goes_on_batch_after_batch_until_none_is_left(app: FastAPI, client, world):
    expiring = [await hold(client, world, ttl_seconds=1) for _ in range(3)]
    await asyncio.sleep(1.2)
    assert await maintenance.expire_reservations(app.state.db, batch=1) == 3
    listed = (await client.get(RESERVATIONS, params={"status": "expired"})).json()["items"]
    assert sorted(r["id"] for r in listed) == sorted(expiring)
    assert await maintenance.expire_reservations(app.state.db, batch=1) == 0


async def test_a_sweep_racing_confirmations_never_leaves_one_both_confirmed_and_expired(
    app: FastAPI, client, world, engine
):
    """Holds confirmed about when they expire, while sweeps run: each ends confirmed with
    its shipment, or expired with none; never both, never a shipment for an expired one."""
    expiring = [await hold(client, world, ttl_seconds=1, reference=f"race-{n}") for n in range(20)]
    # Start when the first one expires: the later ones expire one after another while the
    # confirmations and sweeps run (which end first varies from run to run; any mix is fine).
    first = (await client.get(f"{RESERVATIONS}/{expiring[0]}")).json()
    await asyncio.sleep(
        max((datetime.fromisoformat(first["expires_at"]) - utcnow()).total_seconds(), 0)
    )

    async def confirm(reservation_id: int) -> int:
        return int((await client.post(f"{RESERVATIONS}/{reservation_id}/confirm")).status_code)

    async def sweep() -> int:
        swept = 0
        for _ in range(10):
            swept += await maintenance.expire_reservations(app.state.db)
            await asyncio.sleep(0.05)
        return swept

    *answers, swept = await asyncio.gather(
        *(confirm(r) for r in expiring), sweep(), return_exceptions=False
    )
    assert set(answers) <= {200, 409}
    swept += await maintenance.expire_reservations(app.state.db)
    states = await stored(engine)
    shipments = (
        await client.get(f"{API}/stock/movements", params={"kind": "shipment", "limit": 200})
    ).json()["items"]
    shipped = {m["reference"] for m in shipments}
    for reservation_id, answer in zip(expiring, answers, strict=True):
        status, holding = states[reservation_id]
        assert not holding
        read = (await client.get(f"{RESERVATIONS}/{reservation_id}")).json()
        if answer == 200:
            assert status is ReservationStatus.confirmed
            assert f"race-{expiring.index(reservation_id)}" in shipped
            assert len(read["movement_ids"]) == 1
        else:
            assert status is ReservationStatus.expired
            assert f"race-{expiring.index(reservation_id)}" not in shipped
            assert read["movement_ids"] == []
    assert swept == answers.count(409)
    assert len(shipments) == answers.count(200)
    await assert_ledger_consistent(engine)

"""The ledger tail: movement-id order, never past an id that may still commit."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from inventory.db import Database
from inventory.stock import service
from inventory.stock.schemas import MovementCreate
from inventory.stock.tail import LedgerTail
from tests.helpers import create, create_product

SETTLE = 0.3


@pytest.fixture
async def level(client: httpx.AsyncClient) -> dict[str, int]:
    warehouse = await create(client, "/warehouses", code="TAIL", name="Tail")
    product = await create_product(client, "TAIL-1")
    return {"product_id": product["id"], "warehouse_id": warehouse["id"]}


def receipt(level: dict[str, int], quantity: int = 1) -> MovementCreate:
    return MovementCreate.model_validate(level | {"kind": "receipt", "quantity": quantity})


async def read(database: Database, tail: LedgerTail) -> list[int]:
    async with database.unit_of_work(write=False) as uow:
        return [entry.id for entry in await tail.read(uow.session)]


async def record(database: Database, level: dict[str, int], quantity: int = 1) -> int:
    async with database.unit_of_work(write=True) as uow:
        result = await service.record_movement(uow.session, None, receipt(level, quantity))
    return result.movement.id


async def test_entries_come_in_id_order_in_batches(app: FastAPI, level):
    database: Database = app.state.db
    made = [await record(database, level, n) for n in range(1, 8)]
    tail = LedgerTail(made[0], batch=4)
    assert await read(database, tail) == made[1:5]
    assert tail.more
    assert await read(database, tail) == made[5:]
    assert not tail.more
    assert await read(database, tail) == []
    assert tail.cursor == made[-1]


class Open:
    """A movement recorded in a transaction left open until ``commit`` or ``roll_back``.

    Used as ``async with``: whatever happens, the transaction is over at the end.
    """

    def __init__(self, database: Database, level: dict[str, Any]) -> None:
        self.context = database.unit_of_work(write=True)
        self.level = level
        self.done = False

    async def __aenter__(self) -> Open:
        uow = await self.context.__aenter__()
        result = await service.record_movement(uow.session, None, receipt(self.level))
        self.id = result.movement.id
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.roll_back()

    async def commit(self) -> None:
        if not self.done:
            self.done = True
            await self.context.__aexit__(None, None, None)

    async def roll_back(self) -> None:
        if not self.done:
            self.done = True
            error = RuntimeError("abandoned")
            assert not await self.context.__aexit__(RuntimeError, error, None)


@pytest.mark.backend("postgresql")  # SQLite writers take turns: ids commit in order there
async def test_a_later_id_waits_for_an_earlier_one_still_in_flight(app: FastAPI, client, level):
    database: Database = app.state.db
    other = await create(client, "/warehouses", code="OTHER", name="Other")
    start = await record(database, level)
    tail = LedgerTail(start, settle_seconds=SETTLE)
    async with Open(database, level) as slow:
        later = await record(database, level | {"warehouse_id": other["id"]})
        assert later > slow.id
        assert await read(database, tail) == []
        assert tail.waiting
        await slow.commit()
        assert await read(database, tail) == [slow.id, later]
        assert not tail.waiting


@pytest.mark.backend("postgresql")
async def test_an_id_rolled_back_is_stepped_over_once_it_has_settled(app: FastAPI, client, level):
    database: Database = app.state.db
    other = await create(client, "/warehouses", code="OTHER", name="Other")
    start = await record(database, level)
    tail = LedgerTail(start, settle_seconds=SETTLE)
    async with Open(database, level) as abandoned:
        later = await record(database, level | {"warehouse_id": other["id"]})
        await abandoned.roll_back()
    assert await read(database, tail) == []
    settles_in = tail.settles_in()
    assert settles_in is not None
    assert 0 < settles_in <= SETTLE
    await asyncio.sleep(SETTLE)
    assert await read(database, tail) == [later]
    assert tail.settles_in() is None


@pytest.mark.backend("postgresql")
async def test_the_limit_a_movement_committing_after_the_settle_time_is_not_sent(
    app: FastAPI, client, level
):
    """What the design gives up: a transaction that commits very late is stepped over."""
    database: Database = app.state.db
    other = await create(client, "/warehouses", code="OTHER", name="Other")
    start = await record(database, level)
    tail = LedgerTail(start, settle_seconds=SETTLE)
    async with Open(database, level) as slow:
        later = await record(database, level | {"warehouse_id": other["id"]})
        assert await read(database, tail) == []
        await asyncio.sleep(SETTLE)
        assert await read(database, tail) == [later]
        await slow.commit()
    assert await read(database, tail) == []

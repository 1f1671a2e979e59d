"""The change feed: committed stock changes, and only those, reach subscribers everywhere."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio
from fastapi import FastAPI

from inventory.changefeed import ChangeFeed, SubscriberTooSlow, Subscription
from inventory.config import Settings
from inventory.events import StockChanged
from inventory.pubsub import PubSubListener
from inventory.stock import service as stock
from inventory.stock.schemas import MovementCreate
from tests.helpers import API, create, create_product


async def next_change(subscription: Subscription, within: float = 5.0) -> StockChanged:
    return await asyncio.wait_for(anext(subscription), within)


async def assert_quiet(subscription: Subscription) -> None:
    with pytest.raises(TimeoutError):
        await next_change(subscription, within=0.3)


@pytest.fixture
async def stocked(client: httpx.AsyncClient) -> dict[str, Any]:
    east = await create(client, "/warehouses", code="EAST", name="East")
    west = await create(client, "/warehouses", code="WEST", name="West")
    product = await create_product(client, "FEED-1")
    return {"product": product["id"], "east": east["id"], "west": west["id"]}


@pytest.fixture
async def subscription(app: FastAPI) -> AsyncIterator[Subscription]:
    feed: ChangeFeed = app.state.change_feed
    async with feed.subscribe() as subscribed:
        yield subscribed


async def move(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post(f"{API}/stock/movements", json=body)


async def test_movements_and_transfers_are_published_with_the_new_level(
    client, stocked, subscription
):
    product, east, west = stocked["product"], stocked["east"], stocked["west"]
    receipt = await move(client, product_id=product, warehouse_id=east, kind="receipt", quantity=7)
    assert receipt.status_code == 201
    assert await next_change(subscription) == StockChanged(
        product, east, 7, receipt.json()["id"], sequence=1, reserved=0
    )

    transfer = await client.post(
        f"{API}/stock/transfers",
        json={
            "product_id": product,
            "from_warehouse_id": east,
            "to_warehouse_id": west,
            "quantity": 3,
        },
    )
    assert transfer.status_code == 201
    legs = {m["warehouse_id"]: m["id"] for m in transfer.json()["movements"]}
    assert [await next_change(subscription), await next_change(subscription)] == [
        StockChanged(product, east, 4, legs[east], sequence=2, reserved=0),
        StockChanged(product, west, 3, legs[west], sequence=1, reserved=0),
    ]


async def test_refused_and_rolled_back_changes_are_not_published(
    app, client, stocked, subscription
):
    product, east = stocked["product"], stocked["east"]
    oversell = await move(
        client, product_id=product, warehouse_id=east, kind="shipment", quantity=1
    )
    assert oversell.status_code == 409
    await assert_quiet(subscription)

    # A movement the service accepted, in a transaction that then rolls back.
    data = MovementCreate.model_validate(
        {"product_id": product, "warehouse_id": east, "kind": "receipt", "quantity": 5}
    )

    async def accept_then_abandon() -> None:
        async with app.state.db.unit_of_work(write=True) as uow:
            await stock.record_movement(uow.session, None, data)
            raise RuntimeError("abandoned")

    with pytest.raises(RuntimeError, match="abandoned"):
        await accept_then_abandon()
    await assert_quiet(subscription)
    levels = (await client.get(f"{API}/stock", params={"product_id": product})).json()["items"]
    assert levels == []


async def test_a_subscriber_that_falls_behind_is_ended_not_buffered():
    feed = ChangeFeed(None, "unused", backlog=3)
    async with feed.subscribe() as slow, feed.subscribe() as keeping_up:
        for movement_id in range(1, 5):
            await feed.publish([StockChanged(1, 1, movement_id, movement_id)])
            assert (await next_change(keeping_up)).movement_id == movement_id
        with pytest.raises(SubscriberTooSlow):
            await next_change(slow)
    assert feed.subscriber_count == 0


async def test_a_redis_that_never_answers_neither_blocks_nor_loses_local_delivery():
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the connection, never answers
        writer.close()

    blackhole = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = blackhole.sockets[0].getsockname()[1]
    feed = ChangeFeed(f"redis://127.0.0.1:{port}/0", f"test-{uuid.uuid4().hex}")
    async with blackhole:
        async with feed.subscribe() as subscription:
            started = time.monotonic()
            for movement_id in (1, 2, 3):
                await feed.publish([StockChanged(1, 2, 3, movement_id)])
            publishing = time.monotonic() - started
            assert [(await next_change(subscription)).movement_id for _ in range(3)] == [1, 2, 3]
        started = time.monotonic()
        await feed.close()
        closing = time.monotonic() - started
    assert publishing < 0.5, f"publishing waited {publishing:.2f}s on a dead Redis"
    assert closing < 3, f"closing waited {closing:.2f}s on a dead Redis"


@pytest.mark.backend("postgresql")
async def test_changes_cross_processes_through_redis_once_each(settings: Settings):
    """Two feeds stand for two worker processes sharing Redis."""
    prefix = f"{settings.redis_key_prefix}:{uuid.uuid4().hex[:8]}"
    assert settings.redis_url
    listeners = [PubSubListener(settings.redis_url), PubSubListener(settings.redis_url)]
    here, there = (ChangeFeed(settings.redis_url, prefix, listener) for listener in listeners)
    for listener in listeners:
        listener.start()
    try:
        async with here.subscribe() as local, there.subscribe() as remote:
            # Pub/sub has no "subscribed" signal to the publisher: publish until the relay hears.
            for movement_id in range(1, 50):
                await here.publish([StockChanged(9, 9, 0, movement_id)])
                try:
                    first = await next_change(remote, within=0.2)
                    break
                except TimeoutError:
                    continue
            else:
                pytest.fail("the other process never heard a change")
            while first.movement_id != movement_id:
                first = await next_change(remote)
            # Messages no process of ours would send do not stop the relay.
            raw = redis.asyncio.Redis.from_url(str(settings.redis_url))
            async with raw:
                for junk in (
                    b"not json",
                    b'{"origin": "x", "changes": [{"product_id": Infinity}]}',
                    b'{"origin": "x", "changes": [{"product_id": -1, "warehouse_id": 1,'
                    b' "quantity": 1, "movement_id": 1}]}',
                ):
                    await raw.publish(f"{prefix}:stock-changes", junk)
            await here.publish([StockChanged(9, 9, 5, 1000)])
            assert await next_change(remote) == StockChanged(9, 9, 5, 1000)
            # Locally every change arrived exactly once: the relay skipped our own messages.
            seen = [(await next_change(local)).movement_id for _ in range(movement_id + 1)]
            assert seen == [*range(1, movement_id + 1), 1000]
            await assert_quiet(local)
    finally:
        for listener in listeners:
            await listener.close()
        await here.close()
        await there.close()

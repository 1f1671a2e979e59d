"""One pub/sub listener per process carries both the cache's invalidations and the change feed."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from inventory.cache.store import CacheTiers
from inventory.changefeed import ChangeFeed
from inventory.config import Settings
from inventory.events import StockChanged
from inventory.pubsub import LEASE_SECONDS, PubSubListener


@pytest.mark.backend("postgresql")
async def test_one_listener_feeds_the_cache_and_the_change_feed(settings: Settings):
    """Two processes, each with one listener: a write's invalidation and its stock change
    both reach the other process over that one connection."""
    assert settings.redis_url
    shared = settings.model_copy(update={"redis_key_prefix": f"one-{uuid.uuid4().hex[:8]}"})
    listeners = [PubSubListener(settings.redis_url), PubSubListener(settings.redis_url)]
    here, there = (CacheTiers(shared, listener) for listener in listeners)
    feeds = [ChangeFeed(shared.redis_url, shared.redis_key_prefix, lis) for lis in listeners]
    try:
        for listener in listeners:
            listener.start()
            assert await listener.wait_connected(within=5)
        assert here.listener is listeners[0]
        assert there.listener is listeners[1]
        async with feeds[1].subscribe() as remote:
            before = there.generations["products"]
            await here.invalidate(["products"])
            await feeds[0].publish([StockChanged(1, 2, 3, 4)])
            change = await asyncio.wait_for(anext(remote), 5)
            assert change == StockChanged(1, 2, 3, 4)
            # Published before the change, on the same connection: already applied.
            assert there.generations["products"] > before
    finally:
        for feed in feeds:
            await feed.close()
        # Listeners first: one catching up still uses its cache's client.
        for tiers, listener in zip((here, there), listeners, strict=True):
            await listener.close()
            await tiers.close()


@pytest.mark.backend("postgresql")
async def test_a_suspected_listener_is_distrusted_at_once_and_trusted_after_catching_up(
    settings: Settings,
):
    assert settings.redis_url
    # A prefix of its own: catching up moves every process under the prefix to a new epoch.
    own = settings.model_copy(update={"redis_key_prefix": f"trust-{uuid.uuid4().hex[:8]}"})
    listener = PubSubListener(settings.redis_url)
    tiers = CacheTiers(own, listener)
    listener.start()
    try:
        assert await listener.wait_connected(within=5)
        epoch = tiers.epoch
        listener.suspect()
        assert not listener.connected
        assert not tiers.usable
        assert await listener.wait_connected(within=5)
        # Trusted again only after catching up: a new epoch, nothing from before is used.
        assert tiers.epoch > epoch
    finally:
        await listener.close()
        await tiers.close()


@pytest.mark.backend("postgresql")
async def test_changes_still_arrive_while_the_cache_distrusts_redis(settings: Settings):
    """Losing trust (a slow answer, a failed cache command) keeps the subscription: the
    change feed, which needs no trust, misses nothing meanwhile."""
    assert settings.redis_url
    prefix = f"keep-{uuid.uuid4().hex[:8]}"
    listeners = [PubSubListener(settings.redis_url), PubSubListener(settings.redis_url)]
    here, there = (ChangeFeed(settings.redis_url, prefix, listener) for listener in listeners)
    try:
        for listener in listeners:
            listener.start()
            assert await listener.wait_connected(within=5)
        async with there.subscribe() as remote:
            for movement_id in range(1, 21):
                listeners[1].suspect()
                await here.publish([StockChanged(1, 1, movement_id, movement_id)])
            heard = [(await asyncio.wait_for(anext(remote), 5)).movement_id for _ in range(20)]
            assert heard == list(range(1, 21))
    finally:
        for feed, listener in zip((here, there), listeners, strict=True):
            await listener.close()
            await feed.close()


async def test_channels_are_registered_before_the_listener_starts():
    listener = PubSubListener("redis://127.0.0.1:1/0")  # nothing listens there
    listener.listen("a", lambda _: None)
    listener.start()
    try:
        with pytest.raises(RuntimeError, match="before the listener starts"):
            listener.listen("b", lambda _: None)
    finally:
        await listener.close()


@pytest.mark.backend("postgresql")
async def test_a_busy_loop_is_not_taken_for_a_frozen_redis(settings: Settings):
    """This process's own loop held up past the lease (a slow handler, a blocking call):
    Redis answered meanwhile, so the listener stays trusted and a write made right
    after is published at once, not left for a later catch-up."""
    assert settings.redis_url
    own = settings.model_copy(update={"redis_key_prefix": f"busy-{uuid.uuid4().hex[:8]}"})
    listeners = [PubSubListener(settings.redis_url), PubSubListener(settings.redis_url)]
    here, there = (CacheTiers(own, listener) for listener in listeners)
    try:
        for listener in listeners:
            listener.start()
            assert await listener.wait_connected(within=5)
        before = there.generations["products"]
        time.sleep(LEASE_SECONDS + 0.5)  # noqa: ASYNC251 - the point: the loop is held up
        await here.invalidate(["products"])
        assert listeners[0].connected
        await asyncio.sleep(0.2)
        assert there.generations["products"] > before
    finally:
        for tiers, listener in zip((here, there), listeners, strict=True):
            await listener.close()
            await tiers.close()

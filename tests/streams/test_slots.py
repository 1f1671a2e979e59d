"""Per-user stream slots: the limit, giving back, leases that renew and leases that run out.

On the ``sqlite`` run they count in memory; on the ``postgresql`` run in the
tests' Redis, where two ``StreamSlots`` stand for two workers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from inventory.config import Settings
from inventory.errors import TooManyRequests
from inventory.streams.slots import SlotKind, StreamSlots

LIMITS = {SlotKind.download: 2, SlotKind.live: 3}
LEASE = 1.0


@pytest.fixture
def prefix() -> str:
    return f"slots-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def slots(settings: Settings, prefix: str) -> AsyncIterator[StreamSlots]:
    opened = StreamSlots(
        LIMITS, lease_seconds=LEASE, redis_url=settings.redis_url, key_prefix=prefix
    )
    yield opened
    await opened.close()


async def test_a_user_holds_up_to_the_limit_of_each_kind(slots):
    async with slots.hold(SlotKind.download, 7), slots.hold(SlotKind.download, 7):
        with pytest.raises(TooManyRequests) as refused:
            async with slots.hold(SlotKind.download, 7):
                pytest.fail("a third download slot was given")
        assert refused.value.detail == (
            "You already have 2 downloads running; finish or cancel one, then retry."
        )
        assert refused.value.retry_after == 1
        # Another user, and the other kind, count apart.
        async with slots.hold(SlotKind.download, 8), slots.hold(SlotKind.live, 7):
            assert await slots.held(SlotKind.download, 7) == 2
            assert await slots.held(SlotKind.download, 8) == 1
            assert await slots.held(SlotKind.live, 7) == 1
    assert await slots.held(SlotKind.download, 7) == 0


async def test_a_slot_is_given_back_however_its_block_ends(slots):
    with pytest.raises(RuntimeError):
        async with slots.hold(SlotKind.live, 7):
            raise RuntimeError("the stream failed")

    holding = asyncio.Event()

    async def held_forever() -> None:
        async with slots.hold(SlotKind.live, 7):
            holding.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(held_forever())
    await holding.wait()
    assert await slots.held(SlotKind.live, 7) == 1
    task.cancel()  # a server stopping
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await slots.held(SlotKind.live, 7) == 0
    async with (
        slots.hold(SlotKind.live, 7),
        slots.hold(SlotKind.live, 7),
        slots.hold(SlotKind.live, 7),
    ):
        assert await slots.held(SlotKind.live, 7) == 3


async def test_a_held_slot_outlives_its_lease_while_it_is_renewed(slots):
    async with slots.hold(SlotKind.download, 7), slots.hold(SlotKind.download, 7):
        await asyncio.sleep(LEASE * 2.5)
        assert await slots.held(SlotKind.download, 7) == 2
        with pytest.raises(TooManyRequests):
            async with slots.hold(SlotKind.download, 7):
                pass


async def test_the_slots_of_a_holder_that_stopped_run_out_with_their_lease(settings, prefix, slots):
    """A worker killed mid-stream neither gives back nor renews: its slots expire."""
    dying = StreamSlots(
        LIMITS, lease_seconds=LEASE, redis_url=settings.redis_url, key_prefix=prefix
    )
    held = [dying.hold(SlotKind.download, 7) for _ in range(2)]
    for slot in held:
        await slot.__aenter__()
    await dying.close()  # its renewal stops; nothing is given back
    # In memory each process counts its own: the survivor is the dead one's memory.
    survivor = slots if settings.redis_url else dying
    with pytest.raises(TooManyRequests):
        async with survivor.hold(SlotKind.download, 7):
            pass
    await asyncio.sleep(LEASE + 0.2)
    async with survivor.hold(SlotKind.download, 7), survivor.hold(SlotKind.download, 7):
        assert await survivor.held(SlotKind.download, 7) == 2
    for slot in held:  # only so that nothing is left suspended
        await slot.__aexit__(None, None, None)
    await dying.close()


@pytest.mark.backend("postgresql")
async def test_workers_count_against_one_limit_in_redis(settings, prefix, slots):
    other = StreamSlots(
        LIMITS, lease_seconds=LEASE, redis_url=settings.redis_url, key_prefix=prefix
    )
    try:
        async with slots.hold(SlotKind.download, 7), other.hold(SlotKind.download, 7):
            for either in (slots, other):
                with pytest.raises(TooManyRequests):
                    async with either.hold(SlotKind.download, 7):
                        pass
        async with other.hold(SlotKind.download, 7), other.hold(SlotKind.download, 7):
            assert await slots.held(SlotKind.download, 7) == 2
    finally:
        await other.close()


async def test_without_a_reachable_redis_slots_count_in_memory(prefix):
    unreachable = StreamSlots(
        LIMITS, lease_seconds=LEASE, redis_url="redis://127.0.0.1:1/0", key_prefix=prefix
    )
    try:
        async with unreachable.hold(SlotKind.download, 7), unreachable.hold(SlotKind.download, 7):
            with pytest.raises(TooManyRequests):
                async with unreachable.hold(SlotKind.download, 7):
                    pass
        async with unreachable.hold(SlotKind.download, 7):
            pass
    finally:
        await unreachable.close()


async def test_a_slot_given_back_early_is_free_at_once_and_not_given_back_twice(slots):
    async with slots.hold(SlotKind.download, 7) as first, slots.hold(SlotKind.download, 7):
        await slots.release(first)  # the download's last byte is ready
        await slots.release(first)
        async with slots.hold(SlotKind.download, 7):
            assert await slots.held(SlotKind.download, 7) == 2
        assert await slots.held(SlotKind.download, 7) == 1
    assert await slots.held(SlotKind.download, 7) == 0

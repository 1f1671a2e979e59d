"""Per-user slots for long responses: how many downloads and live streams a user holds at once.

Each download or live stream holds a slot of its kind for as long as it runs
(``StreamSlots.hold``); a user asking for one more than the kind's limit is
refused with ``TooManyRequests``. A slot is a lease: the process holding it
renews it every third of ``lease_seconds``, and a lease nobody renewed is
dropped the next time anyone asks, so the slots of a worker that died free
themselves within ``lease_seconds``.

With Redis configured the leases are one sorted set per user and kind
(member: the slot's id, score: its expiry in Redis's own clock), pruned,
counted and taken in one Lua script, so every worker and machine counts
against the same limit. Without Redis, or while it is unreachable, slots are
counted in this process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis
from redis.exceptions import RedisError

from inventory.errors import TooManyRequests

logger = logging.getLogger(__name__)

MIN_LEASE_SECONDS = 1.0


class SlotKind(StrEnum):
    """What a slot is for; each kind has its own limit per user."""

    download = "downloads"
    """A CSV export being streamed."""
    live = "streams"
    """A live feed: the stock WebSocket, the event stream, a GraphQL subscription."""


REFUSALS = {
    SlotKind.download: "You already have {limit} downloads running; "
    "finish or cancel one, then retry.",
    SlotKind.live: "You already have {limit} live streams open; close one, then retry.",
}


@dataclass(frozen=True)
class Slot:
    """One held slot: whose, of which kind, its id, and where it is counted."""

    kind: SlotKind
    user_id: int
    id: str
    shared: bool
    """Counted in Redis (else in this process's memory)."""


class MemoryLeases:
    """Leases in this process's memory, with the same rules as the Redis ones."""

    def __init__(self) -> None:
        self._leases: dict[tuple[SlotKind, int], dict[str, float]] = {}

    def take(self, slot: Slot, limit: int, lease_seconds: float) -> bool:
        now = time.monotonic()
        leases = self._leases.setdefault((slot.kind, slot.user_id), {})
        for expired in [sid for sid, until in leases.items() if until <= now]:
            del leases[expired]
        if len(leases) >= limit:
            return False
        leases[slot.id] = now + lease_seconds
        return True

    def renew(self, slots: list[Slot], lease_seconds: float) -> None:
        until = time.monotonic() + lease_seconds
        for slot in slots:
            leases = self._leases.get((slot.kind, slot.user_id), {})
            if slot.id in leases:
                leases[slot.id] = until

    def give_back(self, slot: Slot) -> None:
        leases = self._leases.get((slot.kind, slot.user_id))
        if leases is not None:
            leases.pop(slot.id, None)
            if not leases:
                del self._leases[(slot.kind, slot.user_id)]

    def held(self, kind: SlotKind, user_id: int) -> int:
        now = time.monotonic()
        return sum(until > now for until in self._leases.get((kind, user_id), {}).values())


# KEYS[1]: the user's leases of one kind. ARGV: slot id, limit, lease in ms.
# Redis's clock, not the callers': machines whose clocks differ agree on expiry.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# KEYS[1]: the user's leases of one kind. ARGV: lease in ms, then the slot ids to renew.
# XX: a slot given back while the renewal was on its way stays given back.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], lease)
return 0
"""

# KEYS[1]: the user's leases of one kind. The count of leases not yet expired.
_HELD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""


class StreamSlots:
    """The per-user slots of this process: counted in Redis when ``redis_url`` is set.

    ``limits`` gives each kind's limit per user. ``hold`` is the one way in:
    it takes a slot or refuses, keeps the lease renewed while the block runs,
    and gives the slot back when the block ends, however it ends.
    """

    def __init__(
        self,
        limits: Mapping[SlotKind, int],
        *,
        lease_seconds: float,
        redis_url: str | None = None,
        key_prefix: str = "inventory",
    ) -> None:
        self.limits = dict(limits)
        self.lease_seconds = max(lease_seconds, MIN_LEASE_SECONDS)
        self._prefix = f"{key_prefix}:slots"
        self._memory = MemoryLeases()
        self._held: dict[str, Slot] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._releasing: set[asyncio.Task[None]] = set()
        self._redis: Redis | None = None
        if redis_url:
            # Short timeouts: a Redis that hangs must not hold up opening a stream.
            self._redis = Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            self._take = self._redis.register_script(_TAKE)
            self._renew = self._redis.register_script(_RENEW)
            self._count = self._redis.register_script(_HELD)

    @contextlib.asynccontextmanager
    async def hold(self, kind: SlotKind, user_id: int) -> AsyncIterator[Slot]:
        """A slot of ``kind`` for ``user_id`` for the block; TooManyRequests when all are taken."""
        slot = await self._acquire(kind, user_id)
        self._held[slot.id] = slot
        self._ensure_renewer()
        try:
            yield slot
        finally:
            await self.release(slot)

    async def release(self, slot: Slot) -> None:
        """Give ``slot`` back now, before its block ends (once the work it stood for is
        done); a second call, and the block's own at its end, do nothing."""
        if self._held.pop(slot.id, None) is None:
            return
        # Given back even when the caller is being cancelled (a server shutting down).
        release = asyncio.ensure_future(self._release(slot))
        self._releasing.add(release)
        release.add_done_callback(self._releasing.discard)
        await asyncio.shield(release)

    async def held(self, kind: SlotKind, user_id: int) -> int:
        """How many slots of ``kind`` ``user_id`` holds now, on every worker."""
        if self._redis is not None:
            try:
                return int(await self._count(keys=[self._key(kind, user_id)]))
            except RedisError as exc:
                logger.warning("stream slots: Redis unavailable, counting in memory: %s", exc)
        return self._memory.held(kind, user_id)

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        if self._releasing:
            await asyncio.wait(self._releasing, timeout=1.0)
        if self._redis is not None:
            await self._redis.aclose()

    def _key(self, kind: SlotKind, user_id: int) -> str:
        return f"{self._prefix}:{kind.value}:{user_id}"

    def _lease_ms(self) -> int:
        return math.ceil(self.lease_seconds * 1000)

    async def _acquire(self, kind: SlotKind, user_id: int) -> Slot:
        limit = self.limits[kind]
        slot_id = uuid.uuid4().hex
        if self._redis is not None:
            slot = Slot(kind, user_id, slot_id, shared=True)
            try:
                taken = await self._take(
                    keys=[self._key(kind, user_id)], args=[slot_id, limit, self._lease_ms()]
                )
            except RedisError as exc:
                logger.warning("stream slots: Redis unavailable, counting in memory: %s", exc)
            else:
                if not taken:
                    self._refuse(kind, limit)
                return slot
        slot = Slot(kind, user_id, slot_id, shared=False)
        if not self._memory.take(slot, limit, self.lease_seconds):
            self._refuse(kind, limit)
        return slot

    def _refuse(self, kind: SlotKind, limit: int) -> None:
        # A slot frees when its stream ends; a dead holder's within one lease.
        raise TooManyRequests(REFUSALS[kind].format(limit=limit), math.ceil(self.lease_seconds))

    async def _release(self, slot: Slot) -> None:
        if not slot.shared:
            self._memory.give_back(slot)
            return
        assert self._redis is not None
        try:
            await self._redis.zrem(self._key(slot.kind, slot.user_id), slot.id)
        except RedisError as exc:
            logger.warning("stream slots: not given back (the lease runs out): %s", exc)

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while self._held:
            await asyncio.sleep(self.lease_seconds / 3)
            await self.renew_now()

    async def renew_now(self) -> None:
        """Renew the lease of every slot this process holds."""
        held = list(self._held.values())
        self._memory.renew([slot for slot in held if not slot.shared], self.lease_seconds)
        shared: dict[str, list[str]] = {}
        for slot in held:
            if slot.shared:
                shared.setdefault(self._key(slot.kind, slot.user_id), []).append(slot.id)
        for key, ids in shared.items():
            try:
                await self._renew(keys=[key], args=[self._lease_ms(), *ids])
            except RedisError as exc:
                logger.warning("stream slots: leases not renewed: %s", exc)

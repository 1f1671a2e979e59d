"""The live stock feed: committed changes fanned out to subscribers in every process.

Each process delivers its own changes to its subscribers directly, and, when
Redis is configured, publishes them on one pub/sub channel; the process's
pub/sub listener (``inventory.pubsub``, shared with the response cache) hears
that channel and relays the other processes' changes. Both pass
through one sequencer per process (``inventory.sequencer``), which puts each
level's changes back in commit order. Subscribers get a bounded queue each:
one that falls too far behind is ended (``SubscriberTooSlow``) rather than
letting the process buffer without limit. A doorbell is the lighter kind of
listener, for readers that look in the ledger themselves (the SSE stream).

Pub/sub is fire-and-forget: a change published while Redis is away, or before
the listener has (re)subscribed, reaches only the process that made it. Clients that
must not miss anything resume from the ledger (movement ids are the cursor).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from inventory.events import Event, StockChanged
from inventory.pubsub import PubSubListener
from inventory.sequencer import HOLD_SECONDS, LevelSequencer

logger = logging.getLogger(__name__)

DEFAULT_BACKLOG = 1000
OUTBOX_LIMIT = 10_000
CLOSE_WAIT_SECONDS = 1.0


class SubscriberTooSlow(Exception):
    """The subscriber let its backlog fill up; its stream is over."""


class Subscription:
    """One subscriber's queue of changes, read with ``async for``."""

    def __init__(self, backlog: int) -> None:
        # None marks "overflowed": the reader stops there.
        self._queue: asyncio.Queue[StockChanged | None] = asyncio.Queue(maxsize=backlog)
        self._overflowed = False

    def offer(self, change: StockChanged) -> None:
        if self._overflowed:
            return
        try:
            self._queue.put_nowait(change)
        except asyncio.QueueFull:
            self._overflowed = True
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> StockChanged:
        change = await self._queue.get()
        if change is None:
            raise SubscriberTooSlow("too many stock changes were not read in time")
        return change


class Doorbell:
    """Rings on each change: for a reader that then reads the ledger itself.

    Costs a flag per change and never overflows. ``matching`` rings only for
    the changes the reader wants; ``any_change`` for every change.
    """

    def __init__(self, wanted: Callable[[StockChanged], bool]) -> None:
        self._wanted = wanted
        self.any_change = asyncio.Event()
        self.matching = asyncio.Event()

    def offer(self, change: StockChanged) -> None:
        self.any_change.set()
        if self._wanted(change):
            self.matching.set()

    def clear(self) -> None:
        self.any_change.clear()
        self.matching.clear()


class Listener(Protocol):
    def offer(self, change: StockChanged) -> None: ...


class ChangeFeed:
    """Publish committed stock changes; subscribe to everyone's.

    Without a ``listener`` only this process's own changes reach its subscribers.
    """

    def __init__(
        self,
        redis_url: str | None,
        key_prefix: str,
        listener: PubSubListener | None = None,
        *,
        backlog: int = DEFAULT_BACKLOG,
        hold_seconds: float = HOLD_SECONDS,
    ) -> None:
        self._backlog = backlog
        self._subscribers: set[Listener] = set()
        self._sequencer = LevelSequencer(self._fan_out, hold_seconds=hold_seconds)
        self._channel = f"{key_prefix}:stock-changes"
        self._redis: Redis | None = None
        if redis_url:
            # Short timeouts: a dead Redis must not hold up the request that committed.
            self._redis = Redis.from_url(
                redis_url,
                socket_connect_timeout=0.5,
                socket_timeout=0.5,
                health_check_interval=15,
            )
        self._sender: asyncio.Task[None] | None = None
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=OUTBOX_LIMIT)
        # Per instance, not per module: a worker forked after import gets its own.
        self._origin = uuid.uuid4().hex
        if redis_url and listener is not None:
            listener.listen(self._channel, self._relay_message)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def publish(self, changes: Sequence[Event]) -> None:
        """Deliver committed changes here at once; queue them for the other processes.

        The request that committed never waits on Redis: one sender task per
        process publishes the queue in order, and drops (with a warning) what
        a long Redis outage leaves behind beyond ``OUTBOX_LIMIT`` messages.
        """
        stock = [change for change in changes if isinstance(change, StockChanged)]
        if not stock:
            return
        self._deliver(stock)
        if self._redis is None:
            return
        message = json.dumps({"origin": self._origin, "changes": [c.as_dict() for c in stock]})
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            logger.warning("stock changes not relayed to other processes: Redis is behind")
            return
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._run_sender(self._redis))

    async def _run_sender(self, redis: Redis) -> None:
        while True:
            message = await self._outbox.get()
            try:
                await redis.publish(self._channel, message)
            except RedisError as exc:
                logger.warning("stock changes not relayed to other processes: %s", exc)
            finally:
                self._outbox.task_done()

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """A subscription for the duration of the block."""
        subscription = Subscription(self._backlog)
        async with self._listening(subscription):
            yield subscription

    @asynccontextmanager
    async def doorbell(
        self, wanted: Callable[[StockChanged], bool] = lambda _: True
    ) -> AsyncIterator[Doorbell]:
        """A doorbell for the duration of the block."""
        bell = Doorbell(wanted)
        async with self._listening(bell):
            yield bell

    @asynccontextmanager
    async def _listening(self, listener: Listener) -> AsyncIterator[None]:
        self._subscribers.add(listener)
        try:
            yield
        finally:
            self._subscribers.discard(listener)

    async def close(self) -> None:
        """Send what is queued (for at most a second), then stop."""
        self._sequencer.close()
        if self._sender is not None and not self._sender.done():
            with suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), CLOSE_WAIT_SECONDS)
        if self._sender is not None:
            self._sender.cancel()
            with suppress(asyncio.CancelledError):
                await self._sender
        if self._redis is not None:
            await self._redis.aclose()

    def _deliver(self, changes: Sequence[StockChanged]) -> None:
        for change in changes:
            self._sequencer.accept(change)

    def _fan_out(self, change: StockChanged) -> None:
        for listener in tuple(self._subscribers):
            listener.offer(change)

    def _relay_message(self, data: bytes) -> None:
        """Another process's changes, heard by the listener: to this process's subscribers."""
        try:
            message = json.loads(data)
            if message["origin"] == self._origin:
                return
            changes = [StockChanged.from_dict(item) for item in message["changes"]]
        except Exception as exc:
            logger.warning("ignored a malformed stock change message: %s", exc)
            return
        self._deliver(changes)

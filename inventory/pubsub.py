"""This process's one Redis pub/sub listener: every channel's handler, and whether Redis is heard.

The response cache and the change feed each register a channel and a handler
before ``start``; one redis-py connection subscribes to all of them, and one
task reads it and calls each message's handler as soon as the message is read.

Trust is a lease: the connection is watched with PING, and ``connected`` is
true only while no PING has gone unanswered for ``LEASE_SECONDS`` (a frozen
Redis sends no reset) and nobody has reported a failed Redis command since
(``suspect``). Silence is counted from the unanswered PING, not from the last
answer read, so a process whose own loop was busy for a while (its answer
waiting unread on the socket) does not take Redis for frozen.
When trust is lost the ``on_disconnect`` hooks run at once (callers stop
trusting what they cached); once Redis answers again the ``on_connect`` hooks
run before it is trusted again. The connection itself is kept through a lapse,
so the messages of a busy or briefly frozen Redis still arrive, in order; it
is replaced, with backoff, only when it fails or stays silent for
``RECONNECT_AFTER_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 0.5
PING_EVERY_SECONDS = 0.5
LEASE_SECONDS = 2.0
"""Trust lasts this long after Redis last answered: a frozen Redis sends no reset."""
MAX_CATCH_UP_TURNS = 16
"""A lookup never waits longer for the reader than this many loop turns."""
RECONNECT_AFTER_SECONDS = 10.0
"""A connection silent this long is given up for a new one."""

Handler = Callable[[bytes], None]
OnConnect = Callable[[bool], Awaitable[None]]
"""Told ``first`` (True for the first connection, False for a reconnection)."""
OnDisconnect = Callable[[], None]


class PubSubListener:
    """Subscribe to the registered channels for good; ``connected`` says whether we are."""

    def __init__(self, redis_url: str) -> None:
        self._redis = Redis.from_url(
            redis_url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._handlers: dict[bytes, Handler] = {}
        self._on_connect: list[OnConnect] = []
        self._on_disconnect: list[OnDisconnect] = []
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        """Set while trusted: subscribed, caught up, and no failure reported since."""
        self._heard_at = 0.0  # nothing heard yet
        self._asked_at: float | None = None
        """When the oldest PING still unanswered was sent; None when all are answered."""
        self._distrusted_at = 0.0
        self._trusted_once = False
        self._closing = False
        self._pubsub: PubSub | None = None
        """The subscribed connection, while there is one."""

    def listen(
        self,
        channel: str,
        handler: Handler,
        *,
        on_connect: OnConnect | None = None,
        on_disconnect: OnDisconnect | None = None,
    ) -> None:
        """Call ``handler`` with each message on ``channel``; register before ``start``."""
        if self._task is not None:
            raise RuntimeError("register channels before the listener starts")
        self._handlers[channel.encode()] = handler
        if on_connect is not None:
            self._on_connect.append(on_connect)
        if on_disconnect is not None:
            self._on_disconnect.append(on_disconnect)

    @property
    def connected(self) -> bool:
        """Subscribed, and Redis answered within the lease."""
        return self._up.is_set() and self._silence() < LEASE_SECONDS

    def _silence(self) -> float:
        """How long Redis has left a PING unanswered: a loop that was busy itself (and
        has the answer waiting unread) does not count as Redis being silent."""
        return 0.0 if self._asked_at is None else time.monotonic() - self._asked_at

    def start(self) -> None:
        if self._task is None and self._handlers:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        # Also checked by the task: a cancellation that lands in a timeout can come
        # back as TimeoutError on Python 3.11, which the retry loop would swallow.
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._up.clear()
        await self._redis.aclose()

    def suspect(self) -> None:
        """Another client saw Redis fail: stop trusting now; catch up once Redis answers again."""
        self._distrust()

    async def catch_up(self, *, poll: bool = False) -> None:
        """Return once every message already read off the socket has been handled.

        The reader is a task: bytes that arrived with (or just before) a request
        wait in the connection's buffer until the reader's next turn, while the
        request may already be running. A lookup that must see every
        invalidation that arrived before it calls this: it yields to the reader
        only while the buffer holds unread bytes (a few turns at most), so a
        lookup with nothing pending costs no turn. ``poll`` first yields one
        turn so the loop reads the socket itself: for a task that may have been
        woken before the loop looked at the socket (a timer after the loop was
        held up).
        """
        if poll:
            await asyncio.sleep(0)
        for _ in range(MAX_CATCH_UP_TURNS):
            pubsub = self._pubsub
            connection = pubsub.connection if pubsub is not None else None
            if connection is None or not connection.is_connected:
                return
            try:
                if not await connection.can_read():
                    return
            except (RedisError, OSError):
                return
            await asyncio.sleep(0)

    async def wait_connected(self, within: float) -> bool:
        """For start-up and tests: True once connected, False after ``within`` seconds."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), within)
        return self.connected

    async def _run(self) -> None:
        delay = 0.2
        while not self._closing:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever broke, retry
                if self._closing:
                    return
                logger.warning("Redis pub/sub unavailable (%s); retrying in %.1fs", exc, delay)
            if self._up.is_set():
                # It was up: the next connection is tried promptly.
                delay = 0.2
            self._distrust()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _session(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            # Connecting, then hearing every subscription confirmed: each within the timeout.
            async with asyncio.timeout(2 * CONNECT_TIMEOUT_SECONDS):
                await pubsub.subscribe(*self._handlers)
                pending = set(self._handlers)
                while pending:
                    reply = await pubsub.get_message(timeout=None)
                    if reply is not None and reply["type"] == "subscribe":
                        pending.discard(reply["channel"])
                    else:
                        self._dispatch(reply)
            self._heard_at, self._asked_at = time.monotonic(), None
            self._pubsub = pubsub
            reader = asyncio.create_task(self._read(pubsub))
            try:
                await self._trust()
                await self._watch(pubsub, reader)
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
        finally:
            self._pubsub = None
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            reply = await pubsub.get_message(timeout=None)
            self._heard_at, self._asked_at = time.monotonic(), None
            self._dispatch(reply)

    async def _watch(self, pubsub: PubSub, reader: asyncio.Task[None]) -> None:
        """PING a few times a second; lose trust when Redis is silent past the lease, win
        it back when it answers again; raise when the connection is lost."""
        while not self._closing:
            if self._asked_at is None:
                self._asked_at = time.monotonic()
            await pubsub.ping()
            await asyncio.wait({reader}, timeout=PING_EVERY_SECONDS)
            # An answer already here counts: after this process's own loop was busy,
            # the timer can wake this task before the reader has had its turn.
            await self.catch_up(poll=True)
            if reader.done():
                reader.result()  # raises why it ended
                raise ConnectionError("Redis closed the connection")
            silent = self._silence()
            if silent > RECONNECT_AFTER_SECONDS:
                raise ConnectionError("Redis stopped answering PING")
            if self._up.is_set() and silent > LEASE_SECONDS:
                self._distrust()
            elif not self._up.is_set() and self._heard_at > self._distrusted_at:
                try:
                    await self._trust()
                except RedisError as exc:  # still failing: try again on the next answer
                    logger.info("Redis answers but catching up failed: %s", exc)

    async def _trust(self) -> None:
        """Run the on_connect hooks (``first`` only the first time ever), then trust."""
        first = not self._trusted_once
        for hook in self._on_connect:
            await hook(first)
        self._trusted_once = True
        self._up.set()

    def _distrust(self) -> None:
        self._distrusted_at = time.monotonic()
        if self._up.is_set():
            self._up.clear()
            for hook in self._on_disconnect:
                hook()

    def _dispatch(self, reply: dict[str, Any] | None) -> None:
        if reply is None or reply["type"] != "message":
            return
        handler = self._handlers.get(reply["channel"])
        if handler is None:
            return
        try:
            handler(reply["data"])
        except Exception:  # one bad message must not end the connection
            logger.exception("pub/sub handler for %r failed", reply["channel"])

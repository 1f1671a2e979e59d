"""This process's Redis pub/sub listener: handlers run the moment a message arrives.

Cache invalidations must be applied before any request that follows them is
served. A listener task woken by redis-py would race the request's task; this
protocol parses with hiredis inside ``data_received`` and calls the handlers
there, so an invalidation that reached the socket first is applied first.

The connection is watched with PING; when it drops, ``connected`` turns false
at once (callers stop trusting what they cached) and it reconnects with
backoff, calling ``on_connect`` again before reporting itself connected.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import Any, cast

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 0.5
PING_EVERY_SECONDS = 0.5
LEASE_SECONDS = 2.0
"""Trust lasts this long after Redis last answered: a frozen Redis sends no reset."""

Handler = Callable[[bytes], None]


def command(*parts: str | bytes) -> bytes:
    """One RESP command."""
    encoded = [p.encode() if isinstance(p, str) else p for p in parts]
    return b"".join(
        [f"*{len(encoded)}\r\n".encode()]
        + [b"$%d\r\n%s\r\n" % (len(part), part) for part in encoded]
    )


class _Listener(asyncio.Protocol):
    def __init__(self, handlers: Mapping[bytes, Handler], hello: bytes) -> None:
        self._handlers = handlers
        self._hello = hello
        self._reader = hiredis.Reader()
        self.subscribed = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.heard_at = 0.0  # nothing heard yet
        self.transport: asyncio.Transport | None = None
        self._pending = set(handlers)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._hello)

    def data_received(self, data: bytes) -> None:
        self.heard_at = time.monotonic()
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            self._on_reply(reply)

    def _on_reply(self, reply: Any) -> None:
        if isinstance(reply, hiredis.ReplyError):
            self._fail(ConnectionError(f"Redis refused the subscription: {reply}"))
        elif isinstance(reply, list) and reply and reply[0] == b"message":
            handler = self._handlers.get(reply[1])
            if handler is not None:
                try:
                    handler(reply[2])
                except Exception:  # one bad message must not end the connection
                    logger.exception("pub/sub handler for %r failed", reply[1])
        elif isinstance(reply, list) and reply and reply[0] == b"subscribe":
            self._pending.discard(reply[1])
            if not self._pending and not self.subscribed.done():
                self.subscribed.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(exc or ConnectionError("Redis closed the connection"))
        if not self.closed.done():
            self.closed.set_result(None)


class Bus:
    """Subscribe to ``handlers``' channels for good; ``connected`` says whether we are."""

    def __init__(
        self,
        redis_url: str,
        handlers: Mapping[str, Handler],
        on_connect: Callable[[bool], Awaitable[None]],
        on_disconnect: Callable[[], None],
    ) -> None:
        self._url = parse_url(redis_url)
        self._handlers = {channel.encode(): handler for channel, handler in handlers.items()}
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self._transport: asyncio.BaseTransport | None = None
        self._protocol: _Listener | None = None

    @property
    def connected(self) -> bool:
        """Subscribed, and Redis answered within the lease."""
        protocol = self._protocol
        return (
            self._up.is_set()
            and protocol is not None
            and time.monotonic() - protocol.heard_at < LEASE_SECONDS
        )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._up.clear()

    def suspect(self) -> None:
        """Another client saw Redis fail: stop trusting the link now, reconnect and catch up."""
        if self._transport is not None:
            self._transport.close()

    async def wait_connected(self, within: float) -> bool:
        """For start-up and tests: True once connected, False after ``within`` seconds."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), within)
        return self.connected

    async def _run(self) -> None:
        delay, first = 0.2, True
        while True:
            try:
                await self._session(first)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever broke, retry
                logger.warning("Redis pub/sub unavailable (%s); retrying in %.1fs", exc, delay)
            if self._up.is_set():
                # It was up: the next connection is a reconnection, tried promptly.
                first, delay = False, 0.2
                self._up.clear()
                self._on_disconnect()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _session(self, first: bool) -> None:
        loop = asyncio.get_running_loop()
        hello = b""
        if password := self._url.get("password"):
            username = self._url.get("username")
            hello += command("AUTH", *([username] if username else []), password)
        hello += command("SUBSCRIBE", *self._handlers)

        def listener() -> _Listener:
            return _Listener(self._handlers, hello)

        if "path" in self._url:
            connecting = loop.create_unix_connection(listener, self._url["path"])
        else:
            tls = (
                ssl.create_default_context()
                if self._url.get("connection_class") is SSLConnection
                else None
            )
            connecting = loop.create_connection(
                listener, self._url.get("host", "localhost"), self._url.get("port", 6379), ssl=tls
            )
        transport, protocol = await asyncio.wait_for(connecting, CONNECT_TIMEOUT_SECONDS)
        self._transport, self._protocol = transport, protocol
        try:
            await asyncio.wait_for(protocol.subscribed, CONNECT_TIMEOUT_SECONDS)
            await self._on_connect(first)
            self._up.set()
            await self._watch(transport, protocol)
        finally:
            self._transport = self._protocol = None
            transport.close()

    async def _watch(self, transport: asyncio.BaseTransport, protocol: _Listener) -> None:
        """PING a few times a second until the connection is lost or Redis stops answering."""
        writer = cast(asyncio.Transport, transport)
        while True:
            writer.write(command("PING"))
            try:
                await asyncio.wait_for(asyncio.shield(protocol.closed), PING_EVERY_SECONDS)
                raise ConnectionError("Redis closed the connection")
            except TimeoutError:
                pass
            if time.monotonic() - protocol.heard_at > LEASE_SECONDS:
                raise ConnectionError("Redis stopped answering PING")

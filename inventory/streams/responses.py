"""A streamed answer that cannot outstay its client: CSV downloads and the event stream.

``GuardedStream`` sends what its generator yields, and:

- when one send has not gone out within ``idle_seconds`` (the server holds a
  send back while the client's connection is full, so the client read
  nothing all that time), it aborts the connection: the client sees a reset,
  never the chunked body's clean end, so a cut-off file cannot pass for a
  whole one;
- when the client goes away, it stops at once instead of producing into the
  void;
- however it ends (finished, cut off, client gone, server stopping), it
  closes its generator before returning, so a database connection or a COPY
  behind it is released then and there, not whenever garbage collection
  gets to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from inventory.streams.abort import connection_aborter

logger = logging.getLogger(__name__)

NOTICE_SECONDS = 1.0
"""How long to wait for the server to notice an aborted connection."""


class ClientStoppedReading(Exception):
    """The client read nothing for the idle limit; the connection is to be dropped."""


class GuardedStream(StreamingResponse):
    """A streamed answer aborted when its client reads nothing for ``idle_seconds``.

    ``before_end`` runs once the generator is done, before the body's end is
    sent (to give back the caller's slot: see ``inventory.deps.holding_slot``).
    """

    def __init__(
        self,
        content: AsyncGenerator[str | bytes, None],
        *,
        idle_seconds: float,
        media_type: str,
        headers: Mapping[str, str] | None = None,
        before_end: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._chunks = content
        self.idle_seconds = idle_seconds
        self._before_end = before_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        abort = connection_aborter(scope)
        async with contextlib.aclosing(self._chunks):
            pumping = asyncio.create_task(self._pump(send))
            listening = asyncio.create_task(_until_disconnect(receive))
            try:
                await asyncio.wait({pumping, listening}, return_when=asyncio.FIRST_COMPLETED)
                if pumping.done() and isinstance(pumping.exception(), ClientStoppedReading):
                    logger.info(
                        "%s cut off: the client read nothing for %g s",
                        scope.get("path"),
                        self.idle_seconds,
                    )
                    if abort is None:
                        raise ClientStoppedReading(f"read nothing for {self.idle_seconds:g} s")
                    abort()
                    # Returning before the server noticed would read as an unfinished answer.
                    await asyncio.wait({listening}, timeout=NOTICE_SECONDS)
            finally:
                for task in (pumping, listening):
                    task.cancel()
                # The generator must be at rest before it is closed.
                await asyncio.wait({pumping, listening})
            error = None if pumping.cancelled() else pumping.exception()
            if error is not None and not isinstance(error, ClientStoppedReading):
                raise error

    async def _pump(self, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        await self._send(send, start | {"headers": self.raw_headers})
        async for chunk in self._chunks:
            body = chunk if isinstance(chunk, bytes) else chunk.encode(self.charset)
            await self._send(send, {"type": "http.response.body", "body": body, "more_body": True})
            # A send the client keeps up with returns without a turn of the event loop:
            # give the process's other requests theirs between chunks.
            await asyncio.sleep(0)
        if self._before_end is not None:
            await self._before_end()  # before the client can see the end and ask again
        await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})

    async def _send(self, send: Send, message: Message) -> None:
        try:
            async with asyncio.timeout(self.idle_seconds):
                await send(message)
        except TimeoutError:
            raise ClientStoppedReading from None


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass

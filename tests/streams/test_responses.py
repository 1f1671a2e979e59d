"""The guarded stream on its own: cut off, client gone, finished; its generator always closed.

Driven as a server would drive it, with a ``send`` that stops returning like
one whose client stopped reading. The real-server behaviour (the reset the
client sees) is in ``tests/csvio/test_download_limits.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from starlette.types import Message

from inventory.streams.abort import ABORT
from inventory.streams.responses import ClientStoppedReading, GuardedStream


class Source:
    """A generator of chunks that records whether it was closed, and where it stood."""

    def __init__(self, chunks: int | None = None) -> None:
        self.chunks = chunks
        self.sent = 0
        self.closed = False

    async def __call__(self) -> AsyncGenerator[bytes, None]:
        try:
            while self.chunks is None or self.sent < self.chunks:
                self.sent += 1
                yield b"row\n"
        finally:
            self.closed = True


def _scope(**extensions: Any) -> dict[str, Any]:
    return {"type": "http", "path": "/export.csv", "extensions": extensions}


async def _never_disconnects() -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError


def _stalls_after(messages: int, log: list[Message]) -> Any:
    async def send(message: Message) -> None:
        log.append(message)
        if len(log) > messages:
            await asyncio.Event().wait()  # the client's connection is full for good

    return send


async def test_a_stalled_client_is_aborted_and_the_generator_closed():
    source, aborted = Source(), asyncio.Event()
    log: list[Message] = []
    stream = GuardedStream(source(), idle_seconds=0.2, media_type="text/csv")
    scope = _scope(**{ABORT: {"abort": aborted.set}})
    await asyncio.wait_for(stream(scope, _never_disconnects, _stalls_after(3, log)), 5)
    assert aborted.is_set()
    assert source.closed
    assert not any(m.get("more_body") is False for m in log)  # never a clean end


async def test_without_the_servers_abort_a_stalled_stream_raises_so_the_server_drops_it():
    source = Source()
    log: list[Message] = []
    stream = GuardedStream(source(), idle_seconds=0.2, media_type="text/csv")
    with pytest.raises(ClientStoppedReading):
        await asyncio.wait_for(stream(_scope(), _never_disconnects, _stalls_after(3, log)), 5)
    assert source.closed
    assert not any(m.get("more_body") is False for m in log)


async def test_a_client_that_hangs_up_stops_the_stream_at_once():
    source, gone = Source(), asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if source.sent == 5:
            gone.set()
        await asyncio.sleep(0)

    stream = GuardedStream(source(), idle_seconds=5, media_type="text/csv")
    await asyncio.wait_for(stream(_scope(), receive, send), 5)
    assert source.closed
    assert source.sent < 100


async def test_a_finished_stream_ends_the_body_cleanly():
    source = Source(chunks=3)
    log: list[Message] = []
    stream = GuardedStream(source(), idle_seconds=5, media_type="text/csv")
    await stream(_scope(), _never_disconnects, _stalls_after(100, log))
    assert [m.get("body") for m in log[1:]] == [b"row\n"] * 3 + [b""]
    assert log[-1]["more_body"] is False
    assert source.closed

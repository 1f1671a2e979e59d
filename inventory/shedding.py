"""Load shedding: a bound on the HTTP requests one process works on at once, with an answer
(``Overloaded``: 503 problem+json with ``Retry-After``) for every request past it.

Up to ``max_in_flight`` requests run at once. The next ones wait, in order of arrival,
for a free slot: at most ``max_queued`` of them and for at most ``wait_seconds`` each.
A request that finds the queue full, or waits out its time, is answered 503 at once,
before routing, signing in or any database work, so a burst costs the process little
and every connection gets an answer instead of piling up until it runs out of file
descriptors or database connections.

A slot is held until the answer starts, not until it ends: a download or an event
stream that is already answering is bounded by the per-user stream caps and the idle
cut-off instead. Probes and metrics (``exempt``) are never held back or refused, and
neither are WebSockets (they are capped per user).

The count is this process's own on purpose: it measures what this process can take
on, and says nothing about correctness across workers.
"""

from __future__ import annotations

import asyncio
from collections import deque

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inventory import metrics
from inventory.errors import Overloaded
from inventory.problems import problem_response

SHED_DETAIL = "The service is busy with other requests; retry shortly."


class LoadShedder:
    """ASGI middleware bounding concurrent HTTP requests per process; see the module."""

    def __init__(
        self,
        app: ASGIApp,
        max_in_flight: int,
        max_queued: int,
        wait_seconds: float,
        exempt: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self.wait_seconds = wait_seconds
        self.exempt = exempt
        self.in_flight = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiting)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if not await self._acquire():
            metrics.SHED_REQUESTS.inc()
            response = problem_response(Request(scope), Overloaded(SHED_DETAIL))
            await response(scope, receive, send)
            return

        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._release()

        async def send_releasing(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_releasing)
        finally:
            release()

    async def _acquire(self) -> bool:
        """Take a slot, waiting in line for one if allowed; False when the request is shed."""
        if self.in_flight < self.max_in_flight and not self._waiting:
            self.in_flight += 1
            return True
        if len(self._waiting) >= self.max_queued or self.wait_seconds <= 0:
            return False
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            async with asyncio.timeout(self.wait_seconds):
                await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled():
                # The slot was handed over just as the wait ended.
                if isinstance(exc, TimeoutError):
                    return True
                self._release()
            elif turn in self._waiting:
                self._waiting.remove(turn)
            if isinstance(exc, TimeoutError):
                return False
            raise
        return True

    def _release(self) -> None:
        """Hand the slot to the longest waiting request, or free it."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.in_flight -= 1

"""Live streams per user: WebSockets, event streams and GraphQL subscriptions share one cap.

Against real ``inventory serve`` processes. On the ``postgresql`` run the cap
is counted in Redis, so it holds across processes, and the slots of a process
killed mid-stream free themselves once their leases run out.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from inventory.config import Settings
from inventory.models import Role
from tests.graphql.test_subscriptions import Operation, subscribed, synced
from tests.processes import server_environment, serving
from tests.stock.test_live import EVENTS, streaming, watching

pytestmark = pytest.mark.slow

LIMIT = 10
REFUSAL = f"You already have {LIMIT} live streams open; close one, then retry."


async def _refused_event_stream(base: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        return await http.get(EVENTS, headers={"Authorization": f"Bearer {token}"})


async def _socket_refusal(base: str, token: str) -> tuple[int, str]:
    async with watching(base, token) as socket:
        return await socket.closing()


def _errors(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A subscription's errors, as an ``error`` message or a ``next`` carrying them."""
    if message["type"] == "error":
        errors: list[dict[str, Any]] = message["payload"]
        return errors
    assert message["type"] == "next", message
    found: list[dict[str, Any]] = message["payload"]["errors"]
    return found


async def _eventually_accepted(base: str, token: str, within: float) -> float:
    """Seconds until an event stream of the user is accepted again."""
    started = time.monotonic()
    while True:
        answer = await _refused_event_stream_or_open(base, token)
        if answer == 200:
            return time.monotonic() - started
        assert answer == 429
        assert time.monotonic() - started < within, "the slot never came free"
        await asyncio.sleep(0.2)


async def _refused_event_stream_or_open(base: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream("GET", EVENTS, headers=headers) as response,
    ):
        return response.status_code


async def test_an_eleventh_live_stream_is_refused_on_every_transport(server, accounts, stocked):
    viewer = accounts[Role.viewer]
    init = {"Authorization": f"Bearer {viewer.token}"}
    clerk = httpx.AsyncClient(base_url=server, headers=accounts[Role.clerk].headers, timeout=30)
    async with clerk, AsyncExitStack() as held:
        sockets = [await held.enter_async_context(watching(server, viewer.token)) for _ in range(4)]
        for _ in range(3):
            await held.enter_async_context(streaming(server, viewer.token))
        for _ in range(3):
            operation: Operation = await held.enter_async_context(subscribed(server, init=init))
            await synced(operation, clerk, stocked["product"], stocked["east"])

        refused = await _refused_event_stream(server, viewer.token)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["detail"] == REFUSAL

        assert await _socket_refusal(server, viewer.token) == (1008, REFUSAL)

        # A GraphQL subscription is refused on its own; its connection stays open.
        async with subscribed(server, init=init) as operation:
            [error] = _errors(await operation.receive())
            assert error["message"] == REFUSAL
            assert error["extensions"]["code"] == "RATE_LIMITED"

        # The cap is per user: another user is not held back.
        async with streaming(server, accounts[Role.clerk].token):
            pass

        # Closing one stream frees its slot.
        await sockets[0].socket.close()
        assert await _eventually_accepted(server, viewer.token, within=5) < 5


@pytest.mark.backend("postgresql")
async def test_the_cap_holds_across_processes_and_a_killed_one_frees_its_slots(
    settings: Settings, accounts
):
    viewer = accounts[Role.viewer]
    env = server_environment(settings, INVENTORY_STREAM_IDLE_SECONDS="2")  # 2 s leases
    with serving("--no-migrate", **env) as a, serving("--no-migrate", **env) as b:
        async with AsyncExitStack() as held:
            for _ in range(LIMIT):
                await held.enter_async_context(streaming(a.url, viewer.token))
            assert (await _refused_event_stream(b.url, viewer.token)).status_code == 429
            assert await _socket_refusal(b.url, viewer.token) == (1008, REFUSAL)

            os.kill(
                a.pid, signal.SIGKILL
            )  # no goodbye: its slots are neither given back nor renewed
            waited = await _eventually_accepted(b.url, viewer.token, within=15)
        assert waited < 15

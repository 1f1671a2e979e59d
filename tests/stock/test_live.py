"""The live stock feeds, ``WS /api/v1/ws/stock`` and ``GET /api/v1/stock/events``.

Against real ``inventory serve`` processes, read with a WebSocket client and
an HTTP stream as a user's program would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from inventory.auth.signin import Caller, UserBell
from inventory.changefeed import ChangeFeed
from inventory.config import Settings
from inventory.events import StockChanged
from inventory.models import Role
from inventory.stock.follower import UNAVAILABLE, UserWatch, Wanted
from inventory.stock.websocket import Closing, push_changes
from tests.conftest import Account
from tests.helpers import API, assert_ledger_consistent, collect_pages, request_then_hang_up
from tests.processes import server_environment, serving

SOCKET = "/api/v1/ws/stock"
EVENTS = f"{API}/stock/events"


@pytest.fixture
async def clerk(server: str, accounts: dict[Role, Account]) -> AsyncIterator[httpx.AsyncClient]:
    """A clerk's client of the server process, so the changes are made there."""
    headers = accounts[Role.clerk].headers
    async with httpx.AsyncClient(base_url=server, headers=headers, timeout=30) as http:
        yield http


async def move(
    http: httpx.AsyncClient, product: int, warehouse: int, kind: str, quantity: int
) -> dict[str, Any]:
    body = {"product_id": product, "warehouse_id": warehouse, "kind": kind, "quantity": quantity}
    response = await http.post(f"{API}/stock/movements", json=body)
    assert response.status_code == 201, response.text
    movement: dict[str, Any] = response.json()
    return movement


async def transfer(
    http: httpx.AsyncClient, product: int, source: int, target: int, quantity: int
) -> httpx.Response:
    body = {
        "product_id": product,
        "from_warehouse_id": source,
        "to_warehouse_id": target,
        "quantity": quantity,
    }
    return await http.post(f"{API}/stock/transfers", json=body)


def pushed(movement: dict[str, Any]) -> dict[str, int]:
    """What the feeds send for a movement the API answered with."""
    return {
        "product_id": movement["product_id"],
        "warehouse_id": movement["warehouse_id"],
        "quantity": movement["balance"],
        "reserved": 0,
        "available": movement["balance"],
        "movement_id": movement["id"],
    }


def token_expiring_in(settings: Settings, account: Account, seconds: float) -> str:
    now = datetime.now(UTC)
    claims = {"sub": str(account.id), "iat": now, "exp": now + timedelta(seconds=seconds)}
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm="HS256")


# -- WebSocket -------------------------------------------------------------------------


class Watcher:
    """One client of the stock WebSocket."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    async def change(self, within: float = 5.0) -> dict[str, Any]:
        change: dict[str, Any] = json.loads(await asyncio.wait_for(self.socket.recv(), within))
        return change

    async def assert_quiet(self, within: float = 0.5) -> None:
        with pytest.raises(TimeoutError):
            await self.change(within)

    async def closing(self, within: float = 5.0) -> tuple[int, str]:
        """The close code and reason the server sent."""
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(self._read_to_the_end(), within)
        assert closed.value.rcvd is not None, "closed without a close frame"
        return closed.value.rcvd.code, closed.value.rcvd.reason

    async def _read_to_the_end(self) -> None:
        while True:
            await self.socket.recv()


@asynccontextmanager
async def watching(base: str, token: str | None, **query: Any) -> AsyncIterator[Watcher]:
    """A WebSocket on the stock feed; it is listening once this has connected."""
    if token is not None:
        query["token"] = token
    url = base.replace("http://", "ws://") + SOCKET + ("?" + urlencode(query) if query else "")
    async with connect(url) as socket:
        yield Watcher(socket)


async def test_a_socket_pushes_each_change_with_the_level_after_it(
    server, clerk, accounts, stocked
):
    product, east, west = stocked["product"], stocked["east"], stocked["west"]
    async with watching(server, accounts[Role.viewer].token) as watcher:
        receipt = await move(clerk, product, east, "receipt", 10)
        assert await watcher.change() == {
            "product_id": product,
            "warehouse_id": east,
            "quantity": 10,
            "reserved": 0,
            "available": 10,
            "movement_id": receipt["id"],
        }
        shipment = await move(clerk, product, east, "shipment", 3)
        assert await watcher.change() == pushed(shipment) | {"quantity": 7}

        moved = await transfer(clerk, product, east, west, 4)
        assert moved.status_code == 201, moved.text
        out_leg, in_leg = moved.json()["movements"]
        assert [await watcher.change(), await watcher.change()] == [
            pushed(out_leg) | {"warehouse_id": east, "quantity": 3},
            pushed(in_leg) | {"warehouse_id": west, "quantity": 4},
        ]
        await watcher.assert_quiet()


async def test_a_socket_tells_what_live_reservations_hold_at_each_change(
    server, clerk, accounts, stocked
):
    product, east = stocked["product"], stocked["east"]
    await move(clerk, product, east, "receipt", 10)
    line = {"product_id": product, "warehouse_id": east, "quantity": 4}
    held = await clerk.post(f"{API}/reservations", json={"lines": [line]})
    assert held.status_code == 201, held.text
    async with watching(server, accounts[Role.viewer].token) as watcher:
        receipt = await move(clerk, product, east, "receipt", 5)
        assert await watcher.change() == pushed(receipt) | {"reserved": 4, "available": 11}
        confirmed = await clerk.post(f"{API}/reservations/{held.json()['id']}/confirm")
        [shipment_id] = confirmed.json()["movement_ids"]
        assert await watcher.change() == {
            "product_id": product,
            "warehouse_id": east,
            "quantity": 11,
            "reserved": 0,
            "available": 11,
            "movement_id": shipment_id,
        }


async def test_a_socket_can_watch_one_product_or_one_warehouse(server, clerk, accounts, stocked):
    product, other, east, west = (stocked[k] for k in ("product", "other", "east", "west"))
    token = accounts[Role.viewer].token
    async with (
        watching(server, token, product_id=product) as one_product,
        watching(server, token, warehouse_id=west) as one_warehouse,
        watching(server, token, product_id=other, warehouse_id=east) as both,
    ):
        made = [
            await move(clerk, product, east, "receipt", 1),
            await move(clerk, other, east, "receipt", 2),
            await move(clerk, other, west, "receipt", 3),
            await move(clerk, product, west, "receipt", 4),
        ]
        assert [await one_product.change() for _ in range(2)] == [
            pushed(made[0]),
            pushed(made[3]),
        ]
        assert [await one_warehouse.change() for _ in range(2)] == [
            pushed(made[2]),
            pushed(made[3]),
        ]
        assert await both.change() == pushed(made[1])
        for watcher in (one_product, one_warehouse, both):
            await watcher.assert_quiet()


async def test_refused_and_rolled_back_changes_push_nothing(server, clerk, accounts, stocked):
    product, east, west = stocked["product"], stocked["east"], stocked["west"]
    async with watching(server, accounts[Role.viewer].token) as watcher:
        oversold = await clerk.post(
            f"{API}/stock/movements",
            json={"product_id": product, "warehouse_id": east, "kind": "shipment", "quantity": 1},
        )
        assert oversold.status_code == 409
        invalid = await clerk.post(
            f"{API}/stock/movements",
            json={"product_id": product, "warehouse_id": east, "kind": "receipt", "quantity": 0},
        )
        assert invalid.status_code == 422
        # The source leg is taken, then the target would overflow: both roll back.
        full = await move(clerk, product, west, "receipt", 2**31 - 1)
        source = await move(clerk, product, east, "receipt", 5)
        assert [await watcher.change(), await watcher.change()] == [pushed(full), pushed(source)]
        overflow = await transfer(clerk, product, east, west, 1)
        assert overflow.status_code == 409, overflow.text
        await watcher.assert_quiet()

        after = await move(clerk, product, east, "shipment", 1)
        assert await watcher.change() == pushed(after) | {"quantity": 4}


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({}, "Sign in first"),
        ({"token": "not-a-token"}, "invalid or has expired"),
        ({"token": "@viewer", "product_id": "abc"}, "product_id must be"),
        ({"token": "@viewer", "warehouse_id": "0"}, "warehouse_id must be"),
    ],
    ids=["no token", "bad token", "bad product filter", "bad warehouse filter"],
)
async def test_a_socket_refused_is_closed_with_1008_and_a_reason(server, accounts, query, reason):
    query = dict(query)
    token = query.pop("token", None)
    if token == "@viewer":
        token = accounts[Role.viewer].token
    async with watching(server, token, **query) as watcher:
        code, said = await watcher.closing()
    assert code == 1008
    assert reason in said


async def test_a_socket_is_closed_when_its_token_expires(server, settings, accounts):
    soon = token_expiring_in(settings, accounts[Role.viewer], 2)
    started = time.monotonic()
    async with watching(server, soon) as watcher:
        code, reason = await watcher.closing(within=15)
    assert (code, reason) == (1008, "The token is invalid or has expired.")
    assert 1.5 <= time.monotonic() - started < 10


async def change_password(server: str, accounts: dict[Role, Account], account: Account) -> None:
    """Change ``account``'s password through the server, as an admin."""
    async with httpx.AsyncClient(base_url=server, headers=accounts[Role.admin].headers) as http:
        changed = await http.patch(f"{API}/users/{account.id}", json={"password": "changed-pw-1"})
        assert changed.status_code == 200, changed.text


async def test_a_socket_is_closed_at_once_when_its_users_password_changes(server, accounts):
    async with watching(server, accounts[Role.viewer].token) as watcher:
        await watcher.assert_quiet()
        started = time.monotonic()
        await change_password(server, accounts, accounts[Role.viewer])
        code, reason = await watcher.closing(within=15)
    assert (code, reason) == (1008, "The token is invalid or has expired.")
    assert time.monotonic() - started < 5, "closed at the change, not at the minute's check"


@dataclass
class Received:
    """Everything one socket received, by movement id."""

    changes: list[dict[str, Any]] = field(default_factory=list)

    def ids(self) -> set[int]:
        return {c["movement_id"] for c in self.changes}


async def collect(watcher: Watcher, into: Received, until: set[int], within: float) -> None:
    """Read changes until every id of ``until`` has arrived (or ``within`` seconds pass)."""
    deadline = time.monotonic() + within
    while not until <= into.ids():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            into.changes.append(await watcher.change(within=remaining))
        except TimeoutError:
            return


def open_silent_socket(base: str, token: str) -> socket.socket:
    """A WebSocket that completes its handshake and then never reads a byte.

    A plain socket with a small receive buffer, so nothing reads on its behalf.
    """
    host, port = base.removeprefix("http://").split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    raw.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        f"GET {SOCKET}?token={token} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    raw.settimeout(5)
    assert raw.recv(12) == b"HTTP/1.1 101"
    return raw


async def test_a_client_that_never_reads_holds_up_neither_others_nor_writers(
    server, clerk, accounts, stocked
):
    """1,200 changes, for a client that reads none of them beside one that reads them all.

    (On loopback the kernel buffers megabytes for the silent client, so the
    server's sends to it do not block here; test_a_socket_whose_sends_stall...
    covers a send that does.)
    """
    product, east, west = stocked["product"], stocked["east"], stocked["west"]
    await move(clerk, product, east, "receipt", 100)
    transfers = " ".join(
        f'''t{n}: transferStock(input: {{productId: "{product}", fromWarehouseId:
        "{east if n % 2 else west}", toWarehouseId: "{west if n % 2 else east}", quantity: 1}})
        {{ ... on Transfer {{ movements {{ id }} }} }}'''
        for n in range(1, 31)
    )
    silent = open_silent_socket(server, accounts[Role.viewer].token)
    try:
        async with watching(server, accounts[Role.viewer].token) as reader:
            made: set[int] = set()
            received = Received()
            slowest = 0.0
            for _ in range(20):  # 20 requests of 30 transfers: 1,200 changes
                started = time.monotonic()
                response = await clerk.post(
                    "/graphql", json={"query": f"mutation {{ {transfers} }}"}
                )
                slowest = max(slowest, time.monotonic() - started)
                assert response.status_code == 200, response.text
                data = response.json()["data"]
                made |= {int(m["id"]) for t in data.values() for m in t["movements"]}
                await collect(reader, received, made, within=5)
            await collect(reader, received, made, within=10)
    finally:
        silent.close()
    assert len(made) == 1200
    assert received.ids() == made
    assert slowest < 5, f"a write took {slowest:.1f}s"


# -- Server-Sent Events ------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    id: int
    data: dict[str, Any]


class EventReader:
    """The events of one ``text/event-stream`` response, parsed as EventSource does."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self, within: float = 5.0) -> Event:
        fields: dict[str, str] = {}
        while True:
            line = await asyncio.wait_for(anext(self._lines), within)
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            elif "data" in fields:
                return Event(int(fields["id"]), json.loads(fields["data"]))

    async def comment(self, within: float = 5.0) -> str:
        while not self.comments:
            line = await asyncio.wait_for(anext(self._lines), within)
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
            else:
                assert not line, f"an event where a comment was expected: {line}"
        return self.comments.pop(0)

    async def assert_quiet(self, within: float = 0.5) -> None:
        with pytest.raises(TimeoutError):
            await self.next(within)


@asynccontextmanager
async def streaming(
    base: str, token: str, last_event_id: int | None = None, **params: Any
) -> AsyncIterator[EventReader]:
    """The event stream, listening once this has yielded (its first line has arrived)."""
    headers = {"Authorization": f"Bearer {token}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30, read=None)) as http,
        http.stream("GET", EVENTS, headers=headers, params=params) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        reader = EventReader(response)
        assert (await reader.comment()).startswith("after movement ")
        yield reader


async def test_events_carry_the_movement_id_and_the_level_after_it(
    server, clerk, accounts, stocked
):
    product, east, west = stocked["product"], stocked["east"], stocked["west"]
    async with streaming(server, accounts[Role.viewer].token) as events:
        receipt = await move(clerk, product, east, "receipt", 6)
        assert await events.next() == Event(receipt["id"], pushed(receipt) | {"quantity": 6})
        moved = await transfer(clerk, product, east, west, 2)
        legs = moved.json()["movements"]
        assert [await events.next(), await events.next()] == [
            Event(leg["id"], pushed(leg)) for leg in legs
        ]
        await events.assert_quiet()


async def test_events_can_be_of_one_product_or_one_warehouse(server, clerk, accounts, stocked):
    product, other, east, west = (stocked[k] for k in ("product", "other", "east", "west"))
    token = accounts[Role.viewer].token
    async with (
        streaming(server, token, product_id=other) as one_product,
        streaming(server, token, warehouse_id=west) as one_warehouse,
    ):
        made = [
            await move(clerk, product, east, "receipt", 1),
            await move(clerk, other, east, "receipt", 2),
            await move(clerk, product, west, "receipt", 3),
        ]
        assert (await one_product.next()).data == pushed(made[1])
        assert (await one_warehouse.next()).data == pushed(made[2])
        await one_product.assert_quiet()
        await one_warehouse.assert_quiet()


async def test_a_client_back_with_last_event_id_gets_exactly_what_it_missed_then_live(
    server, clerk, accounts, stocked
):
    product, other, east, west = (stocked[k] for k in ("product", "other", "east", "west"))
    token = accounts[Role.viewer].token
    async with streaming(server, token) as events:
        first = await move(clerk, product, east, "receipt", 100)
        last_seen = (await events.next()).id
    assert last_seen == first["id"]

    missed = []  # made while the client was away
    for n in range(50):
        if n % 10 == 9:
            response = await transfer(clerk, product, east, west, 1)
            assert response.status_code == 201
            missed.extend(response.json()["movements"])
        else:
            target = (product, east) if n % 2 else (other, west)
            missed.append(await move(clerk, *target, "receipt", n + 1))
    assert len(missed) == 55

    async with streaming(server, token, last_event_id=last_seen) as events:
        replayed = [await events.next() for _ in missed]
        assert replayed == [Event(m["id"], pushed(m)) for m in missed]
        live = await move(clerk, other, east, "receipt", 1)
        assert await events.next() == Event(live["id"], pushed(live))
        await events.assert_quiet()


async def test_a_resumed_stream_tells_what_was_held_at_each_movement_not_now(
    server, clerk, accounts, stocked
):
    """The WebSocket's figures, movement by movement, even for a client catching up."""
    product, east = stocked["product"], stocked["east"]
    first = await move(clerk, product, east, "receipt", 5)
    line = {"product_id": product, "warehouse_id": east, "quantity": 4}
    held = await clerk.post(f"{API}/reservations", json={"lines": [line]})
    assert held.status_code == 201, held.text
    second = await move(clerk, product, east, "receipt", 10)
    await clerk.post(f"{API}/reservations/{held.json()['id']}/release")
    more = await clerk.post(f"{API}/reservations", json={"lines": [line | {"quantity": 12}]})
    assert more.status_code == 201, more.text

    async with streaming(
        server, accounts[Role.viewer].token, last_event_id=first["id"] - 1
    ) as events:
        assert [await events.next(), await events.next()] == [
            Event(first["id"], pushed(first)),
            Event(second["id"], pushed(second) | {"reserved": 4, "available": 11}),
        ]


async def test_last_event_id_also_as_a_query_parameter_and_the_header_wins(
    server, clerk, accounts, stocked
):
    product, east = stocked["product"], stocked["east"]
    made = [await move(clerk, product, east, "receipt", n) for n in (1, 2, 3)]
    token = accounts[Role.viewer].token
    async with streaming(server, token, last_event_id=made[1]["id"]) as events:
        assert (await events.next()).id == made[2]["id"]
    headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": str(made[1]["id"])}
    async with (
        httpx.AsyncClient(base_url=server, timeout=httpx.Timeout(30, read=None)) as http,
        http.stream(
            "GET", EVENTS, headers=headers, params={"last_event_id": made[0]["id"]}
        ) as response,
    ):
        reader = EventReader(response)
        assert (await reader.next()).id == made[2]["id"]  # the header, not the parameter
    async with (
        httpx.AsyncClient(base_url=server, timeout=httpx.Timeout(30, read=None)) as http,
        http.stream(
            "GET",
            EVENTS,
            headers={"Authorization": f"Bearer {token}"},
            params={"last_event_id": made[0]["id"]},
        ) as response,
    ):
        reader = EventReader(response)
        assert [(await reader.next()).id for _ in range(2)] == [m["id"] for m in made[1:]]


async def test_a_stream_resumed_amid_concurrent_writes_misses_and_repeats_nothing(
    server, clerk, accounts, stocked
):
    """Movements commit out of id order here (on PostgreSQL): the stream still sends
    ledger order, and a reconnection picks up exactly where the last event left off."""
    warehouses = (stocked["east"], stocked["west"])
    levels = [(stocked[p], w) for p in ("product", "other") for w in warehouses]
    start = (await move(clerk, *levels[0], "receipt", 1000))["id"]
    for level in levels[1:]:
        await move(clerk, *level, "receipt", 1000)
    token = accounts[Role.viewer].token
    writing = asyncio.create_task(_concurrent_movements(clerk, levels, warehouses, count=100))
    got: list[Event] = []
    async with streaming(server, token, last_event_id=start) as events:
        while len(got) < 30:
            got.append(await events.next(within=10))
    await asyncio.sleep(0.3)  # away while the writes go on
    async with streaming(server, token, last_event_id=got[-1].id) as events:
        made = await writing
        total = len(levels) - 1 + len(made)
        while len(got) < total:
            got.append(await events.next(within=10))
        await events.assert_quiet()
    ledger = await collect_pages(clerk, f"{API}/stock/movements", limit=200)
    expected = sorted((m for m in ledger if m["id"] > start), key=lambda m: m["id"])
    assert got == [Event(m["id"], pushed(m)) for m in expected]


@pytest.mark.parametrize(
    ("headers", "params", "loc"),
    [
        ({"Last-Event-ID": "abc"}, {}, ["header", "Last-Event-ID"]),
        ({"Last-Event-ID": "-1"}, {}, ["header", "Last-Event-ID"]),
        ({"Last-Event-ID": b"\xb2"}, {}, ["header", "Last-Event-ID"]),  # "²" in Latin-1
        ({}, {"last_event_id": "-1"}, ["query", "last_event_id"]),
        ({}, {"product_id": "abc"}, ["query", "product_id"]),
    ],
    ids=[
        "header not a number",
        "header negative",
        "header not ascii",
        "query negative",
        "bad filter",
    ],
)
async def test_a_bad_cursor_or_filter_is_422(client, accounts, headers, params, loc):
    response = await client.get(EVENTS, headers=headers, params=params)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == [loc]


async def test_an_event_stream_ends_when_its_token_expires(server, settings, accounts):
    soon = token_expiring_in(settings, accounts[Role.viewer], 2)
    started = time.monotonic()
    async with streaming(server, soon) as events:
        with pytest.raises(StopAsyncIteration):
            await events.next(within=15)
    assert events.comments == ["The token is invalid or has expired."]
    assert 1.5 <= time.monotonic() - started < 10


async def test_an_event_stream_ends_at_once_when_its_users_password_changes(server, accounts):
    async with streaming(server, accounts[Role.viewer].token) as events:
        started = time.monotonic()
        await change_password(server, accounts, accounts[Role.viewer])
        with pytest.raises(StopAsyncIteration):
            await events.next(within=15)
    assert events.comments == ["The token is invalid or has expired."]
    assert time.monotonic() - started < 5, "ended at the change, not at the minute's check"


@pytest.mark.backend("sqlite")
async def test_an_idle_event_stream_is_kept_alive_with_pings(server, accounts):
    async with streaming(server, accounts[Role.viewer].token) as events:
        started = time.monotonic()
        assert await events.comment(within=20) == "ping"
    assert 14 <= time.monotonic() - started < 20


async def test_an_event_stream_ends_when_the_client_hangs_up(app: FastAPI, accounts):
    """In process, where the feed's listeners can be counted: the stream ends by itself."""
    feed = app.state.change_feed
    before = feed.subscriber_count
    first_chunk = asyncio.Event()
    hung_up = asyncio.Event()
    receive = request_then_hang_up(hung_up)

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body":
            first_chunk.set()

    token = accounts[Role.viewer].token.encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": EVENTS,
        "raw_path": EVENTS.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"authorization", b"Bearer " + token)],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    call = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(first_chunk.wait(), 5)
    assert feed.subscriber_count == before + 1
    hung_up.set()
    await asyncio.wait_for(call, 5)  # not cancelled: it noticed, and ended
    assert feed.subscriber_count == before


def _wait_for_exit(pid: int, deadline: float) -> float:
    """When the process exited (time.monotonic), or the deadline."""
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return time.monotonic()


def _running(pid: int) -> bool:
    """Alive, and not a zombie waiting for its parent (this process) to reap it."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


async def test_an_event_stream_ends_at_once_when_the_server_stops(settings, accounts):
    with serving("--no-migrate", **server_environment(settings)) as stopping:
        async with streaming(stopping.url, accounts[Role.viewer].token) as events:
            started = time.monotonic()
            os.kill(stopping.pid, signal.SIGTERM)
            with pytest.raises(StopAsyncIteration):
                await events.next(within=8)
            ended = time.monotonic() - started
        exited = await asyncio.to_thread(_wait_for_exit, stopping.pid, started + 9) - started
    # uvicorn would otherwise wait 10 s for the stream before cancelling it.
    assert ended < 3, f"the stream ended {ended:.1f}s after SIGTERM"
    assert exited < 8, f"the server took {exited:.1f}s to stop"


# -- A socket that falls behind, in process ----------------------------------------------


def _caller(account: Account) -> Caller:
    return Caller(account.token, account.id, Role.viewer, datetime.now(UTC) + timedelta(hours=1))


async def _never_answers(text: str) -> None:
    await asyncio.Event().wait()


async def test_a_socket_whose_sends_stall_is_closed_with_1013(accounts):
    feed = ChangeFeed(None, "unused")
    caller = _caller(accounts[Role.viewer])
    async with feed.subscribe() as stalled, feed.subscribe() as healthy:
        pushing = asyncio.create_task(
            push_changes(
                stalled, Wanted(), caller, _unused, _unwatched(), _never_answers, send_timeout=0.3
            )
        )
        started = time.monotonic()
        for n in range(1, 11):
            await feed.publish([StockChanged(1, 1, n, n, n)])
        publishing = time.monotonic() - started
        closing = await asyncio.wait_for(pushing, 5)
        assert [(await anext(healthy)).movement_id for _ in range(10)] == list(range(1, 11))
    assert closing.code == 1013
    assert publishing < 0.1


async def test_a_socket_too_far_behind_is_closed_with_1013_the_others_get_everything(accounts):
    feed = ChangeFeed(None, "unused", backlog=5)
    caller = _caller(accounts[Role.viewer])
    sent: dict[str, list[int]] = {"slow": [], "fast": []}

    def sender(name: str, pause: float) -> Callable[[str], Awaitable[None]]:
        async def send(text: str) -> None:
            await asyncio.sleep(pause)
            sent[name].append(json.loads(text)["movement_id"])

        return send

    async with feed.subscribe() as slow, feed.subscribe() as fast:
        pumps = [
            asyncio.create_task(
                push_changes(slow, Wanted(), caller, _unused, _unwatched(), sender("slow", 0.2))
            ),
            asyncio.create_task(
                push_changes(fast, Wanted(), caller, _unused, _unwatched(), sender("fast", 0))
            ),
        ]
        for n in range(1, 21):
            await feed.publish([StockChanged(1, 1, n, n, n)])
            await asyncio.sleep(0.005)
        closing = await asyncio.wait_for(pumps[0], 5)
        await asyncio.sleep(0.1)
        pumps[1].cancel()
    assert closing.code == 1013
    assert len(sent["slow"]) < 20
    assert sent["fast"] == list(range(1, 21))


async def test_a_socket_whose_caller_cannot_be_checked_is_asked_to_come_back(accounts):
    """The database is down when the minute is up: try again later, rather than fail."""
    feed = ChangeFeed(None, "unused")
    account = accounts[Role.viewer]
    caller = Caller(account.token, account.id, Role.viewer, datetime.now(UTC))  # due at once

    async def database_down(caller: Caller) -> Caller:
        raise OperationalError("SELECT", {}, ConnectionError("gone"))

    async with feed.subscribe() as changes:
        push = push_changes(changes, Wanted(), caller, database_down, _unwatched(), _never_answers)
        closing = await asyncio.wait_for(push, 5)
    assert closing == Closing(1013, UNAVAILABLE)


async def _unused(caller: Caller) -> Caller:
    raise AssertionError("not re-checked in these tests")


def _unwatched() -> UserWatch:
    """A bell nobody rings."""
    return nullcontext(UserBell())


# -- Several worker processes --------------------------------------------------------------


@pytest.mark.backend("postgresql")
async def test_every_socket_gets_every_change_in_order_from_two_workers(
    settings, client, accounts, stocked, engine
):
    """Two workers behind one port, PostgreSQL and Redis; 100 movements, 8 at a time.

    Eight sockets (the kernel spreads them over the workers) each receive every
    change, each level's in commit order: ascending movement ids whose
    quantities are the ledger's balances.
    """
    warehouses = (stocked["east"], stocked["west"])
    levels = [(stocked[p], w) for p in ("product", "other") for w in warehouses]
    token = accounts[Role.viewer].token
    clerk_headers = accounts[Role.clerk].headers
    with serving("--no-migrate", "--workers", "2", **server_environment(settings)) as running:
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=0)
        async with (
            httpx.AsyncClient(
                base_url=running.url, headers=clerk_headers, limits=limits, timeout=60
            ) as writer,
            watching(running.url, token) as w1,
            watching(running.url, token) as w2,
            watching(running.url, token) as w3,
            watching(running.url, token) as w4,
            watching(running.url, token) as w5,
            watching(running.url, token) as w6,
            watching(running.url, token) as w7,
            watching(running.url, token) as w8,
        ):
            watchers = [w1, w2, w3, w4, w5, w6, w7, w8]
            await _every_worker_listening(writer, watchers, levels)
            made = await _concurrent_movements(writer, levels, warehouses, count=100)
            received = [Received() for _ in watchers]
            await asyncio.gather(
                *(
                    collect(w, r, set(made), within=20)
                    for w, r in zip(watchers, received, strict=True)
                )
            )
    ledger = {m["id"]: m for m in await collect_pages(client, f"{API}/stock/movements", limit=200)}
    for number, got in enumerate(received):
        burst = [c for c in got.changes if c["movement_id"] in made]
        assert {c["movement_id"] for c in burst} == set(made), f"socket {number} missed some"
        assert len(burst) == len(made), f"socket {number} got duplicates"
        for product, warehouse in levels:
            of_level = [
                c for c in burst if (c["product_id"], c["warehouse_id"]) == (product, warehouse)
            ]
            ids = [c["movement_id"] for c in of_level]
            assert ids == sorted(ids), f"socket {number}: level {product}/{warehouse} out of order"
            assert [c["quantity"] for c in of_level] == [ledger[i]["balance"] for i in ids]
    await assert_ledger_consistent(engine)


async def _every_worker_listening(
    writer: httpx.AsyncClient, watchers: list[Watcher], levels: list[tuple[int, int]]
) -> None:
    """Change every level, one at a time, until every socket has heard each change.

    Each worker's pub/sub listener subscribes when the worker starts, and a
    test cannot see when that subscription took effect: until then changes
    from the other worker miss it. Each worker's feed also sees every level once here, so
    none of them is "first seen" during the burst.
    """
    for _ in range(50):
        ids = [(await move(writer, p, w, "receipt", 1000))["id"] for p, w in levels]
        received = [Received() for _ in watchers]
        await asyncio.gather(
            *(collect(w, r, set(ids), within=1) for w, r in zip(watchers, received, strict=True))
        )
        if all(set(ids) <= r.ids() for r in received):
            return
    pytest.fail("the sockets never all heard the changes")


async def _concurrent_movements(
    writer: httpx.AsyncClient,
    levels: list[tuple[int, int]],
    warehouses: tuple[int, int],
    count: int,
) -> dict[int, dict[str, Any]]:
    """``count`` requests, 8 in flight, each on a new connection: every fifth a transfer."""
    gate = asyncio.Semaphore(8)

    async def one(n: int) -> list[dict[str, Any]]:
        product, warehouse = levels[n % len(levels)]
        async with gate:
            if n % 5 == 4:
                target = warehouses[1] if warehouse == warehouses[0] else warehouses[0]
                response = await transfer(writer, product, warehouse, target, 3)
                assert response.status_code == 201, response.text
                legs: list[dict[str, Any]] = response.json()["movements"]
                return legs
            kind = "shipment" if n % 2 else "receipt"
            return [await move(writer, product, warehouse, kind, n % 7 + 1)]

    made = [m for ms in await asyncio.gather(*(one(n) for n in range(count))) for m in ms]
    return {m["id"]: m for m in made}

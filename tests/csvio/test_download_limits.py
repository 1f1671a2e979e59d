"""Downloads nobody reads cannot starve the service: per-user caps and the idle cut-off.

Real ``inventory serve`` processes (httpx's ASGITransport has no flow
control, so a client that stops reading only exists over a real socket), with
the idle limit shortened to 2 s: on the ``postgresql`` run two workers on
PostgreSQL and Redis, on the ``sqlite`` run one worker.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from inventory.config import Settings
from inventory.models import Role
from tests.conftest import POSTGRES_ADMIN_URL, Account, _asyncpg_dsn
from tests.csvio.test_exports import _many_movements
from tests.helpers import API
from tests.processes import Server, server_environment, serving

pytestmark = pytest.mark.slow

IDLE_SECONDS = 2
MOVEMENTS_CSV = "/api/v1/exports/movements.csv"
END_OF_BODY = b"\r\n0\r\n\r\n"
TCP_ESTABLISHED = 1


@pytest.fixture
def idle_server(settings: Settings, accounts) -> Iterator[Server]:
    workers = "2" if settings.redis_url else "1"
    env = server_environment(settings, INVENTORY_STREAM_IDLE_SECONDS=str(IDLE_SECONDS))
    with serving("--no-migrate", "--workers", workers, **env) as running:
        yield running


def _download_never_read(server: Server, token: str) -> socket.socket:
    """A download asked for on a socket that will not read: a small receive buffer, so the
    server's sends back up quickly."""
    address = urlsplit(server.url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((address.hostname, address.port))
    sock.sendall(
        f"GET {MOVEMENTS_CSV} HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    return sock


def _everything(sock: socket.socket, within: float) -> tuple[bytes, str]:
    """All the socket receives until the server ends the connection, and how it ended."""
    sock.settimeout(within)
    received = bytearray()
    try:
        while chunk := sock.recv(1 << 16):
            received += chunk
            if received.startswith(b"HTTP/1.1 429") and b"\r\n\r\n" in received:
                head, _, body = bytes(received).partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                if len(body) >= length:
                    return bytes(received), "answered"
        return bytes(received), "closed"
    except ConnectionResetError:
        return bytes(received), "reset"
    except TimeoutError:
        return bytes(received), "still open"
    finally:
        sock.close()


async def _copy_sessions(settings: Settings) -> list[asyncpg.Record]:
    """The server's sessions on the tests' database that are, or were last, in a COPY."""
    database = make_url(settings.database_url).database
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL))
    try:
        return list(
            await admin.fetch(
                "SELECT pid, state, wait_event, query FROM pg_stat_activity "
                "WHERE datname = $1 AND query ILIKE 'COPY%' AND pid <> pg_backend_pid()",
                database,
            )
        )
    finally:
        await admin.close()


def _peek_status(sock: socket.socket) -> int:
    """The answer's status, peeked at: nothing is taken off the socket, so it still reads
    nothing as far as the server can tell."""
    sock.settimeout(10)
    return int(sock.recv(12, socket.MSG_PEEK).split()[1])


def _established(sock: socket.socket) -> bool:
    """Whether the connection is still up (the kernel's TCP state; nothing is read)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == TCP_ESTABLISHED


async def _cut_off(sockets: list[socket.socket], opened: float, within: float) -> list[float]:
    """Wait until the server ended each connection; the seconds each took from opening."""
    cut: dict[int, float] = {}
    deadline = time.monotonic() + within
    while len(cut) < len(sockets):
        assert time.monotonic() < deadline, "a download nobody reads was never cut off"
        for n, sock in enumerate(sockets):
            if n not in cut and not _established(sock):
                cut[n] = time.monotonic() - opened
        await asyncio.sleep(0.05)
    return list(cut.values())


async def _reads_of_another_user(
    server: Server, token: str, until: asyncio.Future[Any]
) -> tuple[list[int], float]:
    """Reads by another user until ``until`` is done: their statuses, and the slowest time."""
    statuses: list[int] = []
    slowest = 0.0
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as http:
        while True:
            for path in (f"{API}/products", f"{API}/stock", f"{API}/stock/movements"):
                started = time.monotonic()
                statuses.append((await http.get(path, params={"limit": 50})).status_code)
                slowest = max(slowest, time.monotonic() - started)
            if until.done():
                break
            await asyncio.sleep(0.05)
    return statuses, slowest


async def test_downloads_nobody_reads_are_capped_and_cut_off(
    settings, client, engine, accounts, idle_server
):
    await _many_movements(client, engine)  # about 18 MB of CSV: far more than the buffers
    viewer = accounts[Role.viewer]
    # Warm the routes up first (imports, compiled queries, pools): what is measured below
    # is how the downloads weigh on other reads, not a cold start.
    warmed = asyncio.get_running_loop().create_future()
    warmed.set_result(None)
    await _reads_of_another_user(idle_server, accounts[Role.clerk].token, until=warmed)
    async with httpx.AsyncClient(base_url=idle_server.url, headers=viewer.headers) as http:
        assert (await http.get(MOVEMENTS_CSV, params={"kind": "adjustment"})).status_code == 200
    opened = time.monotonic()
    sockets = [_download_never_read(idle_server, viewer.token) for _ in range(12)]
    try:
        await _capped_and_cut_off(settings, idle_server, accounts, sockets, opened)
    finally:
        for sock in sockets:
            sock.close()

    # The cut-off downloads gave their slots back.
    headers = viewer.headers
    async with httpx.AsyncClient(base_url=idle_server.url, headers=headers, timeout=60) as http:
        again = await http.get(MOVEMENTS_CSV)
        assert again.status_code == 200
        assert again.text.count("\n") == 200_001


async def _capped_and_cut_off(
    settings: Settings,
    server: Server,
    accounts: dict[Role, Account],
    sockets: list[socket.socket],
    opened: float,
) -> None:
    answers = [_peek_status(sock) for sock in sockets]
    assert sorted(answers) == [200] * 2 + [429] * 10
    downloading = [sock for sock, status in zip(sockets, answers, strict=True) if status == 200]

    # While the two wait to be cut off, another user's reads go on as usual.
    cutting = asyncio.ensure_future(_cut_off(downloading, opened, within=60))
    reads = asyncio.ensure_future(
        _reads_of_another_user(server, accounts[Role.clerk].token, until=cutting)
    )
    took = await cutting
    statuses, slowest = await reads
    assert all(seconds >= IDLE_SECONDS for seconds in took), took
    assert set(statuses) == {200}
    assert slowest < 2.0, f"a read took {slowest:.2f} s"

    if settings.redis_url:
        # Released with the connection: no session of the service is left in a COPY.
        deadline = time.monotonic() + 5
        while sessions := await _copy_sessions(settings):
            assert time.monotonic() < deadline, sessions
            await asyncio.sleep(0.1)

    for sock, status in zip(sockets, answers, strict=True):
        data, how = _everything(sock, within=10)
        if status == 429:
            head = data.split(b"\r\n\r\n")[0].lower()
            assert how == "answered", (data[:300], how)
            assert b"content-type: application/problem+json" in head
            assert f"retry-after: {IDLE_SECONDS}".encode() in head
            assert b"2 downloads running" in data
        else:
            # Aborted: a reset, never the chunked body's last chunk that marks a whole file.
            assert how in ("reset", "closed"), how
            assert not data.endswith(END_OF_BODY)

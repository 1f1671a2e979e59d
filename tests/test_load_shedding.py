"""Every connection gets an answer: past its concurrency limit a process answers 503
problem+json with Retry-After, and a burst of 1,024 connections on two workers gets
200, 429 or 503 on every one of them, none closed unanswered."""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from inventory.config import Settings
from inventory.middleware import RequestIdMiddleware
from inventory.models import Role
from inventory.shedding import LoadShedder
from tests.conftest import Account
from tests.helpers import assert_problem, create_product
from tests.processes import INVENTORY, _free_port, environment, server_environment

# -- the middleware on its own ------------------------------------------------------


class Gate:
    """An app whose answers wait until the test opens the gate; it counts who got in."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered += 1
        if scope["path"] != "/health":
            await self.opened.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def shedding_client(
    gate: Any, max_in_flight: int = 1, max_queued: int = 0, wait_seconds: float = 30.0
) -> tuple[httpx.AsyncClient, LoadShedder]:
    shedder = LoadShedder(
        gate,
        max_in_flight=max_in_flight,
        max_queued=max_queued,
        wait_seconds=wait_seconds,
        exempt=frozenset({"/health"}),
    )
    transport = httpx.ASGITransport(app=RequestIdMiddleware(shedder))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver"), shedder


async def until(condition: Any) -> None:
    """Let the loop run until ``condition()`` holds (the guard only stops a hang)."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the middleware has no event to wait on
            await asyncio.sleep(0)


async def test_past_the_limit_a_request_gets_503_problem_with_retry_after():
    gate = Gate()
    client, shedder = shedding_client(gate)
    async with client:
        first = asyncio.create_task(client.get("/api/v1/products"))
        await until(lambda: gate.entered == 1)

        refused = await client.get("/api/v1/products", headers={"X-Request-ID": "burst-7"})

        body = assert_problem(refused, 503)
        assert body["type"] == "urn:inventory:problem:overloaded"
        assert body["request_id"] == "burst-7"
        assert refused.headers["retry-after"] == "1"
        assert gate.entered == 1  # the refused request never reached the app
        gate.opened.set()
        assert (await first).status_code == 200
        assert (await client.get("/api/v1/products")).status_code == 200
    assert shedder.in_flight == 0


async def test_health_is_never_shed():
    gate = Gate()
    client, _ = shedding_client(gate)
    async with client:
        held = asyncio.create_task(client.get("/api/v1/products"))
        await until(lambda: gate.entered == 1)

        assert (await client.get("/health")).status_code == 200

        gate.opened.set()
        await held


async def test_queued_requests_are_served_in_turn_and_a_full_queue_is_refused():
    gate = Gate()
    client, shedder = shedding_client(gate, max_in_flight=1, max_queued=2)
    async with client:
        running = asyncio.create_task(client.get("/api/v1/products"))
        await until(lambda: gate.entered == 1)
        queued = [asyncio.create_task(client.get("/api/v1/products")) for _ in range(2)]
        await until(lambda: shedder.queued == 2)

        assert_problem(await client.get("/api/v1/products"), 503)

        gate.opened.set()
        answers = await asyncio.gather(running, *queued)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert (shedder.in_flight, shedder.queued) == (0, 0)


async def test_a_request_that_waits_out_its_turn_gets_503():
    gate = Gate()
    client, shedder = shedding_client(gate, max_in_flight=1, max_queued=5, wait_seconds=0.05)
    async with client:
        running = asyncio.create_task(client.get("/api/v1/products"))
        await until(lambda: gate.entered == 1)

        assert_problem(await client.get("/api/v1/products"), 503)

        assert shedder.queued == 0
        gate.opened.set()
        assert (await running).status_code == 200
    assert shedder.in_flight == 0


async def test_a_waiting_request_that_is_cancelled_gives_up_its_place():
    gate = Gate()
    client, shedder = shedding_client(gate, max_in_flight=1, max_queued=1)
    async with client:
        running = asyncio.create_task(client.get("/api/v1/products"))
        await until(lambda: gate.entered == 1)
        waiting = asyncio.create_task(client.get("/api/v1/products"))
        await until(lambda: shedder.queued == 1)

        waiting.cancel()
        await until(lambda: shedder.queued == 0)
        behind = asyncio.create_task(client.get("/api/v1/products"))
        await until(lambda: shedder.queued == 1)
        gate.opened.set()

        assert [(await r).status_code for r in (running, behind)] == [200, 200]
    assert shedder.in_flight == 0


async def test_a_slot_is_free_once_the_answer_starts():
    """A stream that is answering does not hold back other requests."""
    finish = asyncio.Event()

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/stream":
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
            await finish.wait()
        await send({"type": "http.response.body", "body": b"b"})

    shedder = LoadShedder(streaming, max_in_flight=1, max_queued=0, wait_seconds=1)
    statuses: list[int] = []

    async def receive() -> Message:
        await finish.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    def request(path: str) -> Scope:
        return {"type": "http", "method": "GET", "path": path, "headers": []}

    # httpx's ASGI transport reads a whole answer before it returns: call the app directly.
    stream = asyncio.create_task(shedder(request("/stream"), receive, send))
    await until(lambda: statuses == [200])

    await shedder(request("/api/v1/products"), receive, send)

    assert statuses == [200, 200]
    finish.set()
    await stream
    assert shedder.in_flight == 0


# -- a burst against real servers -----------------------------------------------------

BURST = 1024
LOW_SOFT_FILES = 256
"""A soft limit on open files with a higher hard one, as containers start (with 1,024
there): so low that without raising it a burst of 1,024 finds connections closed unanswered."""


@pytest.fixture
def enough_open_files() -> Iterator[None]:
    """The burst holds 1,024 sockets in this process at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < BURST + 256:
        pytest.skip(f"the open files limit ({hard}) is too low for {BURST} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, BURST + 256), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextmanager
def soft_files_limit(limit: int) -> Iterator[None]:
    """This process's soft limit on open files lowered to ``limit`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextmanager
def running(command: list[str], port: int, env: dict[str, str], log: Any) -> Iterator[str]:
    """Start a server with a low soft limit on open files; yield its URL once /health
    answers; stop it afterwards."""
    with soft_files_limit(LOW_SOFT_FILES):
        server = subprocess.Popen(  # noqa: S603 - our own commands
            command, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    with server:
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"server did not come up: {log.read().decode(errors='replace')}")
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=60)


async def one_request(port: int, token: str, start: asyncio.Event) -> tuple[str, bytes]:
    """One GET on its own new connection: the status, or how the connection failed."""
    await start.wait()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return f"connect failed: {type(exc).__name__}", b""
    try:
        writer.write(
            f"GET /api/v1/products HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        async with asyncio.timeout(120):
            answer = await reader.read()
    except OSError as exc:
        return f"read failed: {type(exc).__name__}", b""
    finally:
        writer.close()
    if not answer:
        return "closed without an answer", b""
    status_line = answer.split(b"\r\n", 1)[0].split(b" ")
    return (status_line[1].decode() if len(status_line) > 1 else "garbled"), answer


async def burst(url: str, token: str) -> list[tuple[str, bytes]]:
    """``BURST`` requests, each on a fresh connection, all released at once."""
    port = int(url.rsplit(":", 1)[1])
    start = asyncio.Event()
    tasks = [asyncio.create_task(one_request(port, token, start)) for _ in range(BURST)]
    await asyncio.sleep(0.1)
    start.set()
    return await asyncio.gather(*tasks)


def assert_every_connection_answered(outcomes: list[tuple[str, bytes]]) -> Counter[str]:
    counts = Counter(status for status, _ in outcomes)
    assert set(counts) <= {"200", "429", "503"}, counts
    assert counts["200"] > 0, counts
    for status, answer in outcomes:
        if status == "503":
            head, _, body = answer.partition(b"\r\n\r\n")
            assert b"content-type: application/problem+json" in head.lower()
            assert b"retry-after: " in head.lower()
            assert b"x-request-id: " in head.lower()
            assert b'"status":503' in body
    return counts


@pytest.fixture
async def catalogue(client: httpx.AsyncClient, accounts: dict[Role, Account]) -> Account:
    """A page's worth of products, and the viewer who reads them."""
    for n in range(60):
        await create_product(client, f"BURST-{n:03}")
    return accounts[Role.viewer]


@pytest.mark.slow
@pytest.mark.backend("postgresql")
@pytest.mark.usefixtures("enough_open_files")
async def test_burst_on_the_production_command_answers_every_connection(
    settings: Settings, catalogue: Account, tmp_path: Path
):
    """gunicorn with two uvicorn workers, as the image runs it, with its default limits."""
    port = _free_port()
    env = environment(
        **server_environment(settings),
        PORT=str(port),
        WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, "-c", "python:inventory.gunicorn_conf", "inventory.main:create_app()"]
    with tempfile.TemporaryFile() as log, running(command, port, env, log) as url:
        assert_every_connection_answered(await burst(url, catalogue.token))


@pytest.mark.slow
@pytest.mark.backend("postgresql")
@pytest.mark.usefixtures("enough_open_files")
async def test_burst_past_the_limit_is_shed_with_answers(settings: Settings, catalogue: Account):
    """``inventory serve --workers 2`` with a small limit and no cache: most of the burst
    is refused, every refusal is an answer, and the rest are served."""
    port = _free_port()
    env = environment(
        **server_environment(
            settings,
            INVENTORY_MAX_IN_FLIGHT="4",
            INVENTORY_MAX_QUEUED="8",
            INVENTORY_CACHE_ENABLED="false",
        )
    )
    command = [INVENTORY, "serve", "--port", str(port), "--workers", "2", "--no-migrate"]
    with tempfile.TemporaryFile() as log, running(command, port, env, log) as url:
        counts = assert_every_connection_answered(await burst(url, catalogue.token))
    assert counts["503"] > 0, counts

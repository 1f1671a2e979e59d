"""Reservations under load, against a real server: nothing is promised twice.

PostgreSQL runs behind two worker processes, SQLite behind one (its writers
queue for one lock, so the races are among requests in flight at once, not
among workers). Requests come from this process, up to 300 at once, each
on a connection of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.config import Settings
from inventory.models import Role, StockLevel
from inventory.models.columns import utcnow
from inventory.stock import holds
from tests.helpers import API, assert_ledger_consistent, create, create_product, receive_stock
from tests.processes import Server, server_environment, serving

RESERVATIONS = f"{API}/reservations"
MOVEMENTS = f"{API}/stock/movements"
TRANSFERS = f"{API}/stock/transfers"
LEVELS = f"{API}/stock"
SHORT_TTL_SECONDS = 30
"""Long enough for 300 holds, and reads on every worker, to be answered before the first
hold expires on a busy machine; short enough to wait out."""

Request = tuple[str, str, dict[str, Any] | None]
"""(method, path, JSON body)"""


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[Server]:
    """`inventory serve` on the test database: 2 workers on PostgreSQL, 1 on SQLite.

    Each worker works on as many requests at once as it has pooled database
    connections, and the rest queue for as long as a burst takes on a busy
    machine: a request waiting over 10 s for a connection is shed (503), and
    shedding is not what these tests are about.
    """
    env = server_environment(
        settings,
        INVENTORY_DB_POOL_SIZE="10",
        INVENTORY_MAX_IN_FLIGHT="10",
        INVENTORY_QUEUE_WAIT_SECONDS="120",
    )
    with serving("--no-migrate", "--workers", _workers(settings), **env) as running:
        yield running


def _workers(settings: Settings) -> str:
    return "1" if settings.is_sqlite else "2"


@pytest.fixture
async def clerk(server: Server, accounts: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real server, as a clerk, with a connection of its own for every request at once."""
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=0)
    headers = accounts[Role.clerk].headers
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, limits=limits, timeout=180
    ) as http:
        yield http


async def _burst(http: httpx.AsyncClient, requests: Sequence[Request]) -> list[httpx.Response]:
    """Send every request at once; none may fail with a server error."""
    responses = await asyncio.gather(
        *(http.request(method, path, json=body) for method, path, body in requests)
    )
    failures = [(r.status_code, r.text) for r in responses if r.status_code >= 500]
    assert failures == [], failures[:3]
    return list(responses)


def _hold(product_id: int, warehouse_id: int, **extra: Any) -> Request:
    line = {"product_id": product_id, "warehouse_id": warehouse_id, "quantity": 1}
    return ("POST", RESERVATIONS, {"lines": [line], **extra})


def _movement(product_id: int, warehouse_id: int, kind: str, quantity: int) -> Request:
    body = {"product_id": product_id, "warehouse_id": warehouse_id, "kind": kind}
    return ("POST", MOVEMENTS, body | {"quantity": quantity})


def _refused_hold(response: httpx.Response) -> bool:
    """A 409 saying the one line asked for 1 unit where none was free."""
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert errors == [{"loc": ["body", "lines", 0], "available": 0, "requested": 1}]
    return True


async def _level(http: httpx.AsyncClient, product_id: int, warehouse_id: int) -> dict[str, Any]:
    page = await http.get(LEVELS, params={"product_id": product_id, "warehouse_id": warehouse_id})
    assert page.status_code == 200, page.text
    [item] = page.json()["items"]
    return {k: item[k] for k in ("quantity", "reserved", "available")}


class Overdraws:
    """Reads one level straight from the database, over and over, while a burst runs, and
    keeps every reading where its quantity was below its live holds."""

    def __init__(self, engine: AsyncEngine, product_id: int, warehouse_id: int) -> None:
        self.engine = engine
        self.level = (product_id, warehouse_id)
        self.readings = 0
        self.found: list[tuple[int, int]] = []
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        product_id, warehouse_id = self.level
        while True:
            async with self.engine.connect() as connection:
                quantity, reserved = (
                    await connection.execute(
                        select(
                            StockLevel.quantity,
                            holds.live_reserved(product_id, warehouse_id, utcnow()),
                        ).where(
                            StockLevel.product_id == product_id,
                            StockLevel.warehouse_id == warehouse_id,
                        )
                    )
                ).one()
            self.readings += 1
            if quantity < reserved:
                self.found.append((quantity, reserved))
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> Overdraws:
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


# Which worker process answered: the server-side end of the client's connection
# is a socket one of the server's processes holds open (Linux /proc).


def _server_socket_inode(server_port: int, client_port: int) -> str:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if (local_port, remote_port) == (server_port, client_port):
                return fields[9]
    raise AssertionError(f"no socket from port {client_port} to {server_port}")


def _process_tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def _answering_process(response: httpx.Response, server: Server, processes: list[int]) -> int:
    """Which of the server's ``processes`` answered, while the connection is still open."""
    client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    server_port = httpx.URL(server.url).port
    assert server_port is not None
    target = f"socket:[{_server_socket_inode(server_port, client_port)}]"
    for pid in processes:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(f"/proc/{pid}/fd/{descriptor}") == target:
                    return pid
            except OSError:
                continue
    raise AssertionError("no server process holds the connection")


async def _read_level_once(
    server: Server, processes: list[int], token: str, params: dict[str, int]
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as http:
        page = await http.get(LEVELS, params=params)
        assert page.status_code == 200, page.text
        [item] = page.json()["items"]
        level = {k: item[k] for k in ("quantity", "reserved", "available")}
        return _answering_process(page, server, processes), level


async def _level_on_every_worker(
    server: Server, workers: int, token: str, params: dict[str, int]
) -> dict[int, list[dict[str, Any]]]:
    """The level as each worker process answers it, at least 3 times each, every read on a
    new connection (the first fills the cache, the next are answered from it)."""
    answers: dict[int, list[dict[str, Any]]] = defaultdict(list)
    processes = _process_tree(server.pid)
    for _ in range(30):
        batch = await asyncio.gather(
            *(_read_level_once(server, processes, token, params) for _ in range(8))
        )
        for pid, level in batch:
            answers[pid].append(level)
        if len(answers) == workers and all(len(seen) >= 3 for seen in answers.values()):
            break
    assert len(answers) == workers, f"only {sorted(answers)} answered"
    return dict(answers)


class CachedPastExpiry(AssertionError):
    """A worker still answered expired holds' units as reserved, with no write since."""


def _stale(answers: dict[int, list[dict[str, Any]]], expected: dict[str, Any]) -> None:
    wrong = {pid: [a for a in seen if a != expected] for pid, seen in answers.items()}
    if any(wrong.values()):
        counts = {pid: f"{len(w)} of {len(answers[pid])}" for pid, w in wrong.items()}
        raise CachedPastExpiry(f"answers other than {expected} per worker: {counts}; {wrong}")


@pytest.mark.slow
async def test_300_holds_against_100_units_then_expiry_frees_them_on_every_worker(
    server, settings, client, clerk, accounts
):
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "HOT-1")
    assert (await receive_stock(client, product["id"], warehouse["id"], 100)).status_code == 201

    hold = _hold(product["id"], warehouse["id"], ttl_seconds=SHORT_TTL_SECONDS)
    responses = await _burst(clerk, [hold] * 300)

    assert Counter(r.status_code for r in responses) == Counter({201: 100, 409: 200})
    held = [r.json() for r in responses if r.status_code == 201]
    assert {h["status"] for h in held} == {"held"}
    assert all(_refused_hold(r) for r in responses if r.status_code == 409)

    params = {"product_id": product["id"], "warehouse_id": warehouse["id"]}
    workers = int(_workers(settings))
    token = accounts[Role.viewer].token
    before = await _level_on_every_worker(server, workers, token, params)
    expected = {"quantity": 100, "reserved": 100, "available": 0}
    assert {pid: [expected] * len(seen) for pid, seen in before.items()} == before

    # No client writes from here on: the holds simply run out.
    last_expiry = max(datetime.fromisoformat(h["expires_at"]) for h in held)
    await asyncio.sleep((last_expiry - datetime.now(UTC)).total_seconds() + 0.5)
    after = await _level_on_every_worker(server, workers, token, params)
    _stale(after, {"quantity": 100, "reserved": 0, "available": 100})


@pytest.mark.slow
async def test_a_page_read_twice_while_a_hold_lives_is_not_served_after_it_expires(
    settings, client
):
    """The same claim in one process: the second read is answered from the cache."""
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "HOT-5")
    p, w = product["id"], warehouse["id"]
    assert (await receive_stock(client, p, w, 5)).status_code == 201
    held = await client.post(
        RESERVATIONS,
        json={"lines": [{"product_id": p, "warehouse_id": w, "quantity": 2}], "ttl_seconds": 3},
    )
    assert held.status_code == 201, held.text
    before = [await _level(client, p, w) for _ in range(3)]
    assert before == [{"quantity": 5, "reserved": 2, "available": 3}] * 3

    expires_at = datetime.fromisoformat(held.json()["expires_at"])
    await asyncio.sleep((expires_at - datetime.now(UTC)).total_seconds() + 0.2)
    after = [await _level(client, p, w) for _ in range(3)]
    _stale({0: after}, {"quantity": 5, "reserved": 0, "available": 5})


@pytest.mark.slow
async def test_holds_and_shipments_racing_promise_or_ship_each_unit_once(client, clerk, engine):
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "HOT-2")
    p, w = product["id"], warehouse["id"]
    assert (await receive_stock(client, p, w, 100)).status_code == 201

    requests = [_hold(p, w) if n % 2 else _movement(p, w, "shipment", 1) for n in range(150)]
    async with Overdraws(engine, p, w) as overdraws:
        responses = await _burst(clerk, requests)

    holds_made = sum(r.status_code == 201 for r in responses if r.request.url.path == RESERVATIONS)
    shipped = sum(r.status_code == 201 for r in responses if r.request.url.path == MOVEMENTS)
    assert {r.status_code for r in responses} <= {201, 409}
    # Each request is refused only once nothing is free, so every unit went one way.
    assert holds_made + shipped == 100
    assert all(
        _refused_hold(r)
        for r in responses
        if r.status_code == 409 and r.request.url.path == RESERVATIONS
    )
    assert overdraws.readings > 0
    assert overdraws.found == []
    assert await _level(client, p, w) == {
        "quantity": 100 - shipped,
        "reserved": holds_made,
        "available": 0,
    }
    ledger = (await client.get(MOVEMENTS, params={"kind": "shipment", "limit": 200})).json()
    assert len(ledger["items"]) == shipped
    await assert_ledger_consistent(engine)


@pytest.mark.slow
async def test_holds_racing_transfers_out_and_negative_adjustments(client, clerk, engine):
    main = await create(client, "/warehouses", code="MAIN", name="Main")
    east = await create(client, "/warehouses", code="EAST", name="East")
    product = await create_product(client, "HOT-3")
    p = product["id"]
    assert (await receive_stock(client, p, main["id"], 50)).status_code == 201

    transfer = {"product_id": p, "from_warehouse_id": main["id"], "to_warehouse_id": east["id"]}
    kinds = [
        _hold(p, main["id"]),
        ("POST", TRANSFERS, transfer | {"quantity": 1}),
        _movement(p, main["id"], "adjustment", -1),
    ]
    requests = [kinds[n % 3] for n in range(120)]
    async with Overdraws(engine, p, main["id"]) as overdraws:
        responses = await _burst(clerk, requests)

    assert {r.status_code for r in responses} <= {201, 409}
    made = Counter(r.request.url.path for r in responses if r.status_code == 201)
    holds_made, transferred, adjusted = made[RESERVATIONS], made[TRANSFERS], made[MOVEMENTS]
    assert holds_made + transferred + adjusted == 50
    assert overdraws.found == []
    assert await _level(client, p, main["id"]) == {
        "quantity": 50 - transferred - adjusted,
        "reserved": holds_made,
        "available": 0,
    }
    assert await _level(client, p, east["id"]) == {
        "quantity": transferred,
        "reserved": 0,
        "available": transferred,
    }
    await assert_ledger_consistent(engine)


@pytest.mark.slow
async def test_confirms_and_releases_racing_each_other(client, clerk, engine):
    main = await create(client, "/warehouses", code="MAIN", name="Main")
    east = await create(client, "/warehouses", code="EAST", name="East")
    product = await create_product(client, "HOT-4")
    p = product["id"]
    for warehouse in (main, east):
        assert (await receive_stock(client, p, warehouse["id"], 20)).status_code == 201

    # 20 confirms of one reservation at once: one set of shipments, one answer.
    order = await clerk.post(
        RESERVATIONS,
        json={
            "lines": [
                {"product_id": p, "warehouse_id": main["id"], "quantity": 3},
                {"product_id": p, "warehouse_id": east["id"], "quantity": 2},
            ],
            "reference": "order-1",
        },
    )
    assert order.status_code == 201, order.text
    confirm = ("POST", f"{RESERVATIONS}/{order.json()['id']}/confirm", None)
    answers = await _burst(clerk, [confirm] * 20)
    assert {r.status_code for r in answers} == {200}
    assert len({r.text for r in answers}) == 1
    confirmed = answers[0].json()
    assert confirmed["status"] == "confirmed"
    assert len(confirmed["movement_ids"]) == 2
    # Releasing it now is refused, however many try.
    release = ("POST", f"{RESERVATIONS}/{order.json()['id']}/release", None)
    assert {r.status_code for r in await _burst(clerk, [release] * 10)} == {409}

    # 20 releases of one hold at once: all answer the one released reservation.
    cart = await clerk.post(
        RESERVATIONS,
        json={"lines": [{"product_id": p, "warehouse_id": main["id"], "quantity": 4}]},
    )
    assert cart.status_code == 201, cart.text
    release = ("POST", f"{RESERVATIONS}/{cart.json()['id']}/release", None)
    answers = await _burst(clerk, [release] * 20)
    assert {r.status_code for r in answers} == {200}
    assert len({r.text for r in answers}) == 1
    assert answers[0].json()["status"] == "released"

    # A hold past its expiry cannot be confirmed by anyone, and ships nothing.
    late = await clerk.post(
        RESERVATIONS,
        json={
            "lines": [{"product_id": p, "warehouse_id": main["id"], "quantity": 2}],
            "ttl_seconds": 1,
        },
    )
    assert late.status_code == 201, late.text
    expires_at = datetime.fromisoformat(late.json()["expires_at"])
    await asyncio.sleep((expires_at - datetime.now(UTC)).total_seconds() + 0.2)
    confirm_late = ("POST", f"{RESERVATIONS}/{late.json()['id']}/confirm", None)
    assert {r.status_code for r in await _burst(clerk, [confirm_late] * 10)} == {409}

    # Ten holds, each confirmed and released at the same moment: one of the two wins.
    tens = await _burst(clerk, [_hold(p, main["id"], reference=f"race-{n}") for n in range(10)])
    ids = [r.json()["id"] for r in tens]
    requests = [
        ("POST", f"{RESERVATIONS}/{i}/{action}", None)
        for i in ids
        for action in ("confirm", "release")
    ]
    raced = await _burst(clerk, requests)
    shipped = list(confirmed["movement_ids"])
    shipped_in_race = 0
    for i, confirming, releasing in zip(ids, raced[::2], raced[1::2], strict=True):
        statuses = (confirming.status_code, releasing.status_code)
        assert statuses in {(200, 409), (409, 200)}, (confirming.text, releasing.text)
        confirm_won = confirming.status_code == 200
        winner = (confirming if confirm_won else releasing).json()
        assert winner["status"] == ("confirmed" if confirm_won else "released")
        assert (await client.get(f"{RESERVATIONS}/{i}")).json() == winner
        if winner["status"] == "confirmed":
            assert len(winner["movement_ids"]) == 1
            shipped += winner["movement_ids"]
            shipped_in_race += 1
        else:
            assert winner["movement_ids"] == []

    shipments = (await client.get(MOVEMENTS, params={"kind": "shipment", "limit": 100})).json()
    assert sorted(m["id"] for m in shipments["items"]) == sorted(shipped)
    assert await _level(client, p, main["id"]) == {
        "quantity": 20 - 3 - shipped_in_race,
        "reserved": 0,
        "available": 20 - 3 - shipped_in_race,
    }
    assert await _level(client, p, east["id"]) == {
        "quantity": 18,
        "reserved": 0,
        "available": 18,
    }
    await assert_ledger_consistent(engine)


@pytest.mark.slow
async def test_20_replays_of_one_hold_across_workers_hold_once(client, server, accounts):
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    product = await create_product(client, "HOT-6")
    p, w = product["id"], warehouse["id"]
    assert (await receive_stock(client, p, w, 10)).status_code == 201
    headers = accounts[Role.clerk].headers | {"Idempotency-Key": "cart-7"}
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, limits=limits, timeout=120
    ) as http:
        line = {"product_id": p, "warehouse_id": w, "quantity": 3}
        responses = await _burst(http, [("POST", RESERVATIONS, {"lines": [line]})] * 20)
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses][:3]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert await _level(client, p, w) == {"quantity": 10, "reserved": 3, "available": 7}
    assert len((await client.get(RESERVATIONS)).json()["items"]) == 1

"""`make bench`: the service beside the limit, every case with its reference measured in the
same run on the same machine.

Server cases run the real service (``inventory serve``, one worker unless the case
says otherwise) on PostgreSQL and Redis when reachable, SQLite otherwise, loaded
from another process (wrk: 1 thread, 64 connections unless the case says otherwise,
a warm-up, then ``BENCH_SECONDS`` x 3, median). References, served and loaded the
same way: bare Starlette returning the same bytes (the framework floor), and
PostgreSQL's own ``COPY ... TO STDOUT`` / ``COPY ... FROM STDIN`` for the same rows.
One table is printed and written as JSON under bench/results/.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis
from sqlalchemy import text

from bench import profile
from bench.data import (
    PAGE,
    SECRET,
    Prepared,
    asyncpg_dsn,
    postgres_database,
    prepare,
    products_csv,
)
from bench.load import (
    RUNS,
    ensure_wrk,
    free_port,
    measure,
    peak_rss_mb,
    serving,
    timed_download,
    wrk,
)
from inventory.config import Settings
from inventory.db import create_engine
from inventory.models import Role

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
PROFILE = os.environ.get("BENCH_PROFILE", "") not in ("", "0")
LEDGER_ROWS = int(os.environ.get("BENCH_EXPORT_ROWS", "1000000"))
IMPORT_ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "100000"))
WRITERS = 32
REDIS_URL = os.environ.get("INVENTORY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
INVENTORY = str(Path(sys.executable).with_name("inventory"))
UVICORN = str(Path(sys.executable).with_name("uvicorn"))
RESULTS = Path(__file__).parent / "results"
GRAPHQL_PAGE = (
    f"{{ products(first: {PAGE}) {{ edges {{ node {{ id sku name unitPrice reorderLevel "
    "category { id name } stockLevels { quantity warehouse { code } } } } "
    "pageInfo { endCursor hasNextPage } } }"
)


@dataclass
class Row:
    case: str
    unit: str  # "req/s" or "rows/s"
    rate: float
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    rss_mb: float = math.nan
    reference: str = ""
    ratio: float = math.nan
    target: str = ""
    met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def target(row: Row, ratio: float, text: str, ok: Callable[[float], bool]) -> Row:
    row.ratio, row.target, row.met = ratio, text, ok(ratio)
    return row


class Service:
    """``inventory serve`` on the bench database, started per case."""

    def __init__(self, database_url: str, backend: str) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("INVENTORY_")}
        self.env = base | {
            "INVENTORY_DATABASE_URL": database_url,
            "INVENTORY_SECRET_KEY": SECRET,
            "INVENTORY_REDIS_KEY_PREFIX": f"bench-{os.getpid()}",
            # The write bench measures the write path, not the per-user limiter.
            "INVENTORY_WRITE_RATE_LIMIT": "10000000/minute",
            "INVENTORY_MAX_UPLOAD_BYTES": str(64 * 1024 * 1024),
        }
        if backend == "postgresql" and _redis_reachable():
            self.env["INVENTORY_REDIS_URL"] = REDIS_URL
        self.base_env = base

    def start(self, workers: int = 1, **overrides: str) -> tuple[Any, str]:
        port = free_port()
        command = [INVENTORY, "serve", "--no-migrate", "--port", str(port)]
        command += ["--workers", str(workers)]
        return serving(command, self.env | overrides, port), f"http://127.0.0.1:{port}"


def _redis_reachable() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False
    return True


def http_cases(service: Service, data: Prepared) -> list[Row]:
    viewer = {"Authorization": f"Bearer {data.tokens[Role.viewer]}"}
    clerk = {"Authorization": f"Bearer {data.tokens[Role.clerk]}"}
    json_type = {"Content-Type": "application/json"}
    product = f"/api/v1/products/{data.product_id}"
    movement = json.dumps(
        {
            "product_id": data.write_product_id,
            "warehouse_id": data.write_warehouse_id,
            "kind": "receipt",
            "quantity": 1,
        }
    )
    rows: list[Row] = []

    def case(name: str, workers: int = 1, **env: str) -> Callable[..., Row]:
        def run(path: str, headers: dict[str, str], **load: Any) -> Row:
            server, url = service.start(workers, **env)
            with server as pid:
                numbers = measure(url + path, headers, SECONDS, **load)
                rss = peak_rss_mb(pid)
                found = profiled(name, pid, lambda: wrk(url + path, headers, SECONDS, **load))
            row = Row(name, "req/s", numbers["rate"], numbers["p50_ms"], numbers["p99_ms"], rss)
            if found:
                row.extra["profile"] = found
            return row

        return run

    with tempfile.TemporaryDirectory() as directory:
        body_file = Path(directory) / "body.json"
        server, url = service.start()
        with server:
            body_file.write_bytes(httpx.get(url + product, headers=viewer).content)
        port = free_port()
        floor_command = [UVICORN, "bench.floor:app", "--port", str(port), "--no-access-log"]
        with serving(floor_command, service.base_env | {"BENCH_FLOOR_BODY": str(body_file)}, port):
            numbers = measure(f"http://127.0.0.1:{port}{product}", {}, SECONDS)
        floor = Row("Starlette floor (same bytes)", "req/s", numbers["rate"], numbers["p50_ms"])
        floor.p99_ms = numbers["p99_ms"]
        rows.append(floor)

    cached = case("GET product, cached")(product, viewer)
    uncached = case("GET product, uncached", INVENTORY_CACHE_ENABLED="false")(product, viewer)
    rows.append(target(cached, cached.rate / floor.rate, ">= 0.20 x floor", lambda r: r >= 0.2))
    rows.append(
        target(uncached, uncached.rate / floor.rate, ">= 0.06 x floor", lambda r: r >= 0.06)
    )
    cached.extra["vs_uncached"] = cached.rate / uncached.rate

    rest_page = case(f"GET products?limit={PAGE}", INVENTORY_CACHE_ENABLED="false")(
        f"/api/v1/products?limit={PAGE}", viewer
    )
    rest_page.reference, rest_page.ratio = "floor", rest_page.rate / floor.rate
    rows.append(rest_page)
    graphql = case(f"GraphQL page of {PAGE}, nested")(
        "/graphql", viewer | json_type, body=json.dumps({"query": GRAPHQL_PAGE})
    )
    graphql.reference = "REST page p50"
    rows.append(
        target(graphql, graphql.p50_ms / rest_page.p50_ms, "p50 <= 2 x REST", lambda r: r <= 2)
    )

    write = case("POST movement (32 clients)")(
        "/api/v1/stock/movements", clerk | json_type, connections=WRITERS, body=movement
    )
    write.reference, write.ratio = "floor", write.rate / floor.rate
    rows.append(write)

    def shipment(product_id: int) -> str:
        body = {"product_id": product_id, "warehouse_id": data.write_warehouse_id}
        return json.dumps(body | {"kind": "shipment", "quantity": 1})

    ship = case("POST shipment (32 clients)")(
        "/api/v1/stock/movements",
        clerk | json_type,
        connections=WRITERS,
        body=shipment(data.ship_product_id),
    )
    ship.reference, ship.ratio = "POST movement", ship.rate / write.rate
    rows.append(ship)
    held = case("POST shipment, level with a live hold")(
        "/api/v1/stock/movements",
        clerk | json_type,
        connections=WRITERS,
        body=shipment(data.held_product_id),
    )
    held.reference = "POST shipment"
    rows.append(target(held, held.rate / ship.rate, ">= 0.5 x no hold", lambda r: r >= 0.5))

    # Scaling: the same two cases with two worker processes.
    cached_2 = case("GET product, cached, 2 workers", workers=2)(product, viewer)
    rows.append(target(cached_2, cached_2.rate / cached.rate, "vs 1 worker", lambda r: r > 1))
    write_2 = case("POST movement, 2 workers", workers=2)(
        "/api/v1/stock/movements", clerk | json_type, connections=WRITERS, body=movement
    )
    rows.append(target(write_2, write_2.rate / write.rate, "vs 1 worker", lambda r: r > 1))
    return rows


def profiled(case: str, pid: int, load: Callable[[], object]) -> dict[str, object]:
    """With BENCH_PROFILE=1: one more (untimed) load while py-spy samples the server."""
    if not PROFILE:
        return {}
    RESULTS.mkdir(exist_ok=True)
    raw = RESULTS / f"profile-{re.sub(r'[^a-z0-9]+', '-', case.lower()).strip('-')}.txt"
    spy = profile.start(pid, SECONDS - 1, raw)
    load()
    spy.wait(timeout=60)
    return profile.summary(raw) if raw.exists() else {}


def export_case(service: Service, data: Prepared, ledger_rows: int, copy_rate: float | None) -> Row:
    """The ledger as CSV through the HTTP endpoint, fetched by curl."""
    viewer = {"Authorization": f"Bearer {data.tokens[Role.viewer]}"}
    server, url = service.start()
    with server as pid:
        timed_download(url + "/api/v1/exports/movements.csv", viewer)  # warm-up
        times = [timed_download(url + "/api/v1/exports/movements.csv", viewer) for _ in range(RUNS)]
        rss = peak_rss_mb(pid)
    row = Row(
        f"export {data.ledger_rows:,} movements",
        "rows/s",
        data.ledger_rows / statistics.median(times),
    )
    row.rss_mb = rss
    row.p50_ms = statistics.median(times) * 1000
    row.extra["rss_target_mb"] = 150
    if copy_rate is None:
        row.reference = "(no COPY on SQLite)"
        return row
    row.reference = "COPY TO STDOUT"
    return target(
        row,
        row.rate / copy_rate,
        ">= 0.5 x COPY, RSS < 150 MB",
        lambda r: r >= 0.5 and rss < 150,
    )


def import_case(service: Service, data: Prepared, copy_rate: float | None) -> Row:
    manager = {"Authorization": f"Bearer {data.tokens[Role.manager]}"}
    server, url = service.start()
    times = []
    with server as pid, httpx.Client(base_url=url, headers=manager, timeout=600) as http:
        for run in range(RUNS):
            content = products_csv(IMPORT_ROWS, run)
            started = time.perf_counter()
            accepted = http.post(
                "/api/v1/imports/products", files={"file": ("p.csv", content, "text/csv")}
            )
            accepted.raise_for_status()
            job_id = accepted.json()["id"]
            while (job := http.get(f"/api/v1/imports/{job_id}").json())["status"] in (
                "queued",
                "running",
            ):
                time.sleep(0.05)
            if job["status"] != "succeeded":
                raise RuntimeError(f"import failed: {job}")
            times.append(time.perf_counter() - started)
        rss = peak_rss_mb(pid)
    row = Row(
        f"import {IMPORT_ROWS:,} products (upload)",
        "rows/s",
        IMPORT_ROWS / statistics.median(times),
    )
    row.rss_mb = rss
    row.p50_ms = statistics.median(times) * 1000
    if copy_rate is None:
        row.reference = "(no COPY on SQLite)"
        return row
    row.reference = "COPY FROM STDIN"
    return target(row, row.rate / copy_rate, ">= 0.25 x COPY", lambda r: r >= 0.25)


async def ledger_size(database_url: str) -> int:
    """The ledger's rows now (the write cases added to it)."""
    engine = create_engine(Settings(database_url=database_url))
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(text("SELECT count(*) FROM stock_movements")))
    finally:
        await engine.dispose()


async def copy_rates(database_url: str) -> tuple[float, float, list[Row]]:
    """PostgreSQL's own COPY for the same rows: the export and import limits."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        out_times, in_times = [], []
        for run in range(RUNS + 1):  # the first is a warm-up
            started = time.perf_counter()
            await connection.copy_from_query(
                "SELECT id, created_at, kind, quantity, reference FROM stock_movements ORDER BY id",
                output=_discard,
                format="csv",
            )
            out_times.append(time.perf_counter() - started)
            table = f"bench_in_{run}"
            await connection.execute(
                f"CREATE TEMP TABLE {table} (sku text, name text, description text, "
                "category text, supplier text, unit_price numeric(12,2), reorder_level int, "
                "is_active bool)"
            )
            content = products_csv(IMPORT_ROWS, run + 10)
            started = time.perf_counter()
            await connection.copy_to_table(
                table, source=io.BytesIO(content), format="csv", header=True
            )
            in_times.append(time.perf_counter() - started)
            await connection.execute(f"DROP TABLE {table}")
        ledger = await connection.fetchval("SELECT count(*) FROM stock_movements")
    finally:
        await connection.close()
    copy_out = ledger / statistics.median(out_times[1:])
    copy_in = IMPORT_ROWS / statistics.median(in_times[1:])
    return (
        copy_out,
        copy_in,
        [
            Row(f"COPY TO STDOUT, {ledger:,} rows", "rows/s", copy_out, reference="(reference)"),
            Row(
                f"COPY FROM STDIN, {IMPORT_ROWS:,} rows", "rows/s", copy_in, reference="(reference)"
            ),
        ],
    )


async def _discard(chunk: bytes) -> None:
    return None


async def _call(work: Callable[[], Awaitable[None]]) -> None:
    await work()


def run() -> tuple[str, list[Row]]:
    ensure_wrk()
    found = asyncio.run(postgres_database())
    with tempfile.TemporaryDirectory() as directory:
        if found is None:
            backend, url, drop = "sqlite", f"sqlite+aiosqlite:///{directory}/bench.db", None
        else:
            backend, (url, drop) = "postgresql", found
        try:
            data = asyncio.run(prepare(url, LEDGER_ROWS))
            service = Service(url, backend)
            rows = http_cases(service, data)
            copy_out = copy_in = None
            if backend == "postgresql":
                copy_out, copy_in, references = asyncio.run(copy_rates(url))
                rows += references
            ledger = asyncio.run(ledger_size(url))
            rows.append(export_case(service, data, ledger, copy_out))
            rows.append(import_case(service, data, copy_in))
        finally:
            if drop is not None:
                asyncio.run(_call(drop))
    return backend, rows


def table(backend: str, rows: list[Row]) -> str:
    lines = [
        f"backend: {backend}{' + Redis' if backend == 'postgresql' else ''}; wrk -t1 -c64 "
        f"-d{SECONDS}s (writes -c{WRITERS}), median of {RUNS}; CPUs: {os.cpu_count()}",
        "",
        f"| {'case':<36} | {'rate':>14} | {'p50 ms':>8} | {'p99 ms':>8} | {'RSS MB':>6} "
        f"| {'reference':<20} | {'ratio':>6} | {'target':<26} | met |",
        "|" + "|".join("-" * w for w in (38, 16, 10, 10, 8, 22, 8, 28, 5)) + "|",
    ]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "NO")
        lines.append(
            f"| {r.case:<36} | {r.rate:>10,.0f} {r.unit[:-2]:<3} | {_n(r.p50_ms):>8} "
            f"| {_n(r.p99_ms):>8} | {_n(r.rss_mb, 0):>6} | {r.reference:<20} "
            f"| {_n(r.ratio):>6} | {r.target:<26} | {met:<3} |"
        )
    return "\n".join(lines)


def _n(value: float, places: int = 2) -> str:
    return "" if math.isnan(value) else f"{value:,.{places}f}"


def main() -> None:
    if PROFILE and not profile.available():
        raise SystemExit("BENCH_PROFILE=1 needs py-spy (a dev dependency: make install)")
    backend, rows = run()
    print()
    print(table(backend, rows))
    profiles = [profile.describe(r.case, r.extra["profile"]) for r in rows if "profile" in r.extra]
    if profiles:
        print(
            "\nSelf time by library (py-spy, one extra run per case; raw stacks in bench/results/):"
        )
        print("\n".join(f"- {line}" for line in profiles))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target_file = RESULTS / f"bench-{stamp}.json"
    target_file.write_text(
        json.dumps({"backend": backend, "rows": [asdict(r) for r in rows]}, indent=2)
    )
    print(f"\nwritten to {target_file}")

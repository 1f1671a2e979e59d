"""CSV import and export throughput, on SQLite and (when reachable) PostgreSQL.

Each case runs the service's own code in-process (the import job body and the
export stream the HTTP routes use) and is printed beside a reference measured
in the same run on the same rows: PostgreSQL's own COPY ... FROM STDIN for
imports and COPY ... TO STDOUT for exports. On SQLite there is no COPY; the
reference there is the same rows read with plain sqlite3 and csv.writer.
Median of 3 runs; results also go to bench/results/ as JSON.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from inventory import migrations
from inventory.config import Settings
from inventory.csvio import exports, jobs, products
from inventory.db import Database, open_database
from inventory.models import MovementKind, Product, StockLevel, StockMovement, Warehouse
from inventory.stock.service import LedgerFilter

IMPORT_ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "20000"))
EXPORT_ROWS = int(os.environ.get("BENCH_EXPORT_ROWS", "200000"))
RUNS = 3
POSTGRES = os.environ.get(
    "INVENTORY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
RESULTS = Path(__file__).parent / "results"


def products_csv(rows: int, run: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(products.COLUMNS)
    for n in range(rows):
        writer.writerow(
            [
                f"B{run}-{n:07d}",
                f"Bench item {n}",
                "",
                f"Cat {n % 20}",
                f"Sup {n % 7}",
                f"{n % 1000}.{n % 100:02d}",
                n % 50,
                "true",
            ]
        )
    return buffer.getvalue().encode()


async def median_rate(rows: int, once: Callable[[int], Awaitable[None]]) -> float:
    times = []
    for run in range(RUNS):
        started = time.perf_counter()
        await once(run)
        times.append(time.perf_counter() - started)
    return rows / statistics.median(times)


async def bench_import(database: Database) -> float:
    async def once(run: int) -> None:
        async with database.unit_of_work(write=True) as uow:
            job = await jobs.create_product_import(
                uow.session, None, "bench.csv", products_csv(IMPORT_ROWS, run), False
            )
        outcome = await jobs.run_import_job(database, job.id)
        if outcome is not jobs.Outcome.succeeded:
            raise RuntimeError(f"benchmark import ended {outcome}")

    return await median_rate(IMPORT_ROWS, once)


async def seed_ledger(database: Database) -> None:
    async with database.unit_of_work(write=True) as uow:
        warehouse = Warehouse(code="BENCH", name="Bench")
        product = Product(sku="BENCH-LEDGER", name="Ledger", unit_price=1)
        uow.session.add_all([warehouse, product])
        await uow.session.flush()
        start = datetime.now(UTC) - timedelta(days=1)
        for offset in range(0, EXPORT_ROWS, 20_000):
            await uow.session.execute(
                insert(StockMovement),
                [
                    {
                        "product_id": product.id,
                        "warehouse_id": warehouse.id,
                        "kind": MovementKind.receipt,
                        "quantity": 1,
                        "balance": n + 1,
                        "reference": f"R-{n}",
                        "created_at": start + timedelta(microseconds=n),
                    }
                    for n in range(offset, min(offset + 20_000, EXPORT_ROWS))
                ],
            )
        await uow.session.execute(
            insert(StockLevel).values(
                product_id=product.id,
                warehouse_id=warehouse.id,
                quantity=EXPORT_ROWS,
                updated_at=datetime.now(UTC),
            )
        )


async def bench_export(database: Database) -> float:
    async def once(run: int) -> None:
        lines = 0
        async for chunk in exports.stream_csv(database, exports.movements_export(LedgerFilter())):
            lines += chunk.count(b"\n")
        assert lines == EXPORT_ROWS + 1, lines

    return await median_rate(EXPORT_ROWS, once)


async def postgres_references(dsn: str) -> tuple[float, float]:
    connection = await asyncpg.connect(dsn)
    try:

        async def copy_out(run: int) -> None:
            async def keep(chunk: bytes) -> None:
                return None  # discarded, as the service's consumer discards them

            await connection.copy_from_query(
                "SELECT id, created_at, kind, quantity, reference FROM stock_movements ORDER BY id",
                output=keep,
                format="csv",
            )

        async def copy_in(run: int) -> None:
            table = f"bench_in_{run}"
            await connection.execute(
                f"CREATE TEMP TABLE {table} (sku text, name text, description text, "
                "category text, supplier text, unit_price numeric(12,2), reorder_level int, "
                "is_active bool)"
            )
            await connection.copy_to_table(
                table,
                source=io.BytesIO(products_csv(IMPORT_ROWS, run + 10)),
                format="csv",
                header=True,
            )
            await connection.execute(f"DROP TABLE {table}")

        return (await median_rate(IMPORT_ROWS, copy_in), await median_rate(EXPORT_ROWS, copy_out))
    finally:
        await connection.close()


def sqlite_reference(path: str) -> float:
    def once() -> None:
        connection = sqlite3.connect(path)
        writer = csv.writer(io.StringIO(), lineterminator="\n")
        for row in connection.execute(
            "SELECT id, created_at, kind, quantity, reference FROM stock_movements ORDER BY id"
        ):
            writer.writerow(row)
        connection.close()

    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return EXPORT_ROWS / statistics.median(times)


async def run_backend(name: str, url: str) -> list[dict[str, Any]]:
    settings = Settings(database_url=url)
    database = open_database(settings)
    try:
        await migrations.upgrade(database.engine)
        imported = await bench_import(database)
        await seed_ledger(database)
        exported = await bench_export(database)
    finally:
        await database.engine.dispose()
    if name == "postgresql":
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        import_ref, export_ref = await postgres_references(dsn)
        ref_name = ("COPY FROM STDIN", "COPY TO STDOUT")
    else:
        import_ref = float("nan")
        export_ref = sqlite_reference(make_url(url).database or "")
        ref_name = ("-", "sqlite3 + csv.writer")
    return [
        {
            "case": "import products",
            "backend": name,
            "rows": IMPORT_ROWS,
            "rows_per_s": imported,
            "reference": ref_name[0],
            "reference_rows_per_s": import_ref,
        },
        {
            "case": "export movements",
            "backend": name,
            "rows": EXPORT_ROWS,
            "rows_per_s": exported,
            "reference": ref_name[1],
            "reference_rows_per_s": export_ref,
        },
    ]


async def postgres_database() -> tuple[str, Callable[[], Awaitable[None]]] | None:
    admin_dsn = make_url(POSTGRES).set(drivername="postgresql").render_as_string(False)
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"PostgreSQL unreachable ({exc}); benchmarking SQLite only", file=sys.stderr)
        return None
    name = f"inventory_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    return make_url(POSTGRES).set(database=name).render_as_string(False), drop


async def run_all() -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as directory:
        results += await run_backend("sqlite", f"sqlite+aiosqlite:///{directory}/bench.db")
    postgres = await postgres_database()
    if postgres:
        url, drop = postgres
        try:
            results += await run_backend("postgresql", url)
        finally:
            await drop()
    return results


def main() -> None:
    results = asyncio.run(run_all())
    print(f"\nCSV throughput, median of {RUNS} runs (rows/s; ratio = service / reference)\n")
    print(
        f"{'case':<18} {'backend':<11} {'rows':>8} {'rows/s':>10}  {'reference':<22} "
        f"{'ref rows/s':>10} {'ratio':>6}"
    )
    for r in results:
        ratio = (
            r["rows_per_s"] / r["reference_rows_per_s"]
            if r["reference_rows_per_s"] == r["reference_rows_per_s"]
            else float("nan")
        )
        r["ratio"] = ratio
        print(
            f"{r['case']:<18} {r['backend']:<11} {r['rows']:>8} {r['rows_per_s']:>10,.0f}  "
            f"{r['reference']:<22} {r['reference_rows_per_s']:>10,.0f} {ratio:>6.2f}"
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = RESULTS / f"csv-{stamp}.json"
    target.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwritten to {target}")

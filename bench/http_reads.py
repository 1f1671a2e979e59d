"""Product reads over HTTP beside the framework floor, loaded by wrk from another process.

Three servers, each one uvicorn worker started the same way, loaded the same
way (wrk, 1 thread, 64 connections, after a warm-up; median of 3 runs):

- the floor: bare Starlette returning the exact bytes of the product (bench/floor.py);
- ``inventory serve`` with the response cache (PostgreSQL and Redis when reachable);
- the same with ``INVENTORY_CACHE_ENABLED=false``.

Every request to the service carries a valid bearer token.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
from pydantic import SecretStr

from bench.csv_transfer import RESULTS, postgres_database
from inventory import migrations, security
from inventory.config import Settings
from inventory.db import open_database
from inventory.models import Product, Role
from inventory.users import service as users
from inventory.users.schemas import UserCreate

RUNS = 3
SECONDS = int(os.environ.get("BENCH_HTTP_SECONDS", "8"))
CONNECTIONS = 64
REDIS_URL = os.environ.get("INVENTORY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "bench-secret-key-that-is-long-enough-for-hs256"  # noqa: S105 - a throwaway bench key
INVENTORY = str(Path(sys.executable).with_name("inventory"))
UVICORN = str(Path(sys.executable).with_name("uvicorn"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int) -> Iterator[int]:
    """Start a server; yield its pid once it answers; stop it afterwards."""
    with subprocess.Popen(  # noqa: S603 - our own commands
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as process:
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield process.pid
        finally:
            process.terminate()
            process.wait(timeout=30)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, headers: dict[str, str], seconds: int) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99}


def measure(url: str, headers: dict[str, str]) -> dict[str, float]:
    wrk(url, headers, 2)  # warm-up
    runs = [wrk(url, headers, SECONDS) for _ in range(RUNS)]
    median = statistics.median(r["rps"] for r in runs)
    return min(runs, key=lambda r: abs(r["rps"] - median))


async def prepare(database_url: str) -> tuple[int, str]:
    """A migrated database holding one viewer and one product; their id and the token."""
    settings = Settings(database_url=database_url, secret_key=SecretStr(SECRET))
    database = open_database(settings)
    try:
        await migrations.upgrade(database.engine)
        async with database.unit_of_work(write=True) as uow:
            data = UserCreate.model_validate(
                {"email": "bench@example.com", "password": "bench-password", "role": Role.viewer}
            )
            user = await users.create_user(uow.session, data)
            product = Product(sku="BENCH-1", name="Bench item", unit_price="9.99")
            uow.session.add(product)
            await uow.session.flush()
            product_id = product.id
        token = security.create_access_token(user.id, Role.viewer, settings).token
    finally:
        await database.engine.dispose()
    return product_id, token


def redis_reachable() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False
    return True


def run_case(backend: str, database_url: str) -> list[dict[str, Any]]:
    product_id, token = asyncio.run(prepare(database_url))
    path = f"/api/v1/products/{product_id}"
    auth = {"Authorization": f"Bearer {token}"}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("INVENTORY_")}
    env = base_env | {
        "INVENTORY_DATABASE_URL": database_url,
        "INVENTORY_SECRET_KEY": SECRET,
        "INVENTORY_REDIS_KEY_PREFIX": f"bench-{os.getpid()}",
    }
    if backend == "postgresql" and redis_reachable():
        env["INVENTORY_REDIS_URL"] = REDIS_URL
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as directory:
        body_file = Path(directory) / "body.json"
        cases = [
            ("cached GET product", env),
            ("uncached GET product", env | {"INVENTORY_CACHE_ENABLED": "false"}),
        ]
        for case, case_env in cases:
            port = _free_port()
            command = [INVENTORY, "serve", "--no-migrate", "--port", str(port)]
            with serving(command, case_env, port) as pid:
                body = httpx.get(f"http://127.0.0.1:{port}{path}", headers=auth).content
                body_file.write_bytes(body)
                numbers = measure(f"http://127.0.0.1:{port}{path}", auth)
                numbers["rss_mb"] = peak_rss_mb(pid)
            results.append({"case": case, "backend": backend, **numbers})
        port = _free_port()
        floor = [UVICORN, "bench.floor:app", "--port", str(port), "--workers", "1"]
        floor_env = base_env | {"BENCH_FLOOR_BODY": str(body_file)}
        with serving(floor, floor_env, port) as pid:
            numbers = measure(f"http://127.0.0.1:{port}{path}", {})
            numbers["rss_mb"] = peak_rss_mb(pid)
        results.append({"case": "Starlette floor", "backend": "-", **numbers})
    floor_rps = results[-1]["rps"]
    uncached_rps = results[1]["rps"]
    results[0]["ratio"] = results[0]["rps"] / floor_rps
    results[0]["vs_uncached"] = results[0]["rps"] / uncached_rps
    results[1]["ratio"] = uncached_rps / floor_rps
    results[2]["ratio"] = 1.0
    return results


def run() -> list[dict[str, Any]]:
    if shutil.which("wrk") is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],  # noqa: S607
            check=True,
        )

    async def postgres() -> Any:
        return await postgres_database()

    found = asyncio.run(postgres())
    if found is None:
        with tempfile.TemporaryDirectory() as directory:
            return run_case("sqlite", f"sqlite+aiosqlite:///{directory}/bench.db")
    url, drop = found
    try:
        return run_case("postgresql", url)
    finally:
        asyncio.run(drop())


def print_table(results: list[dict[str, Any]]) -> None:
    print(
        f"\nHTTP reads, wrk -t1 -c{CONNECTIONS} -d{SECONDS}s, median of {RUNS} (ratio = / floor)\n"
    )
    columns = ("req/s", "p50 ms", "p99 ms", "RSS MB", "ratio")
    print(f"{'case':<22} {'backend':<11} " + " ".join(f"{c:>9}" for c in columns))
    for r in results:
        print(
            f"{r['case']:<22} {r['backend']:<11} {r['rps']:>9,.0f} {r['p50_ms']:>9.2f} "
            f"{r['p99_ms']:>9.2f} {r['rss_mb']:>9.0f} {r['ratio']:>9.2f}"
        )
    cached = results[0]
    print(f"\ncached vs uncached: {cached['vs_uncached']:.1f}x")


def main() -> None:
    results = run()
    print_table(results)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = RESULTS / f"http-{stamp}.json"
    target.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {target}")

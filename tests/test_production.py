"""The production command, run as the Dockerfile runs it: gunicorn, 2 uvicorn workers,
PostgreSQL and Redis, JSON logs, metrics summed across workers, a graceful SIGTERM;
and without Redis, gunicorn and ``inventory serve --workers 2`` alike: every line
either writes is JSON, and no worker keeps what the others cannot tell it about.

Docker itself does not run on these machines: the test reads the image's CMD and
the migration service's command from the Dockerfile and docker-compose.yml and
runs exactly those.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.mmap_dict import MmapedDict

from inventory.config import Settings
from inventory.worker_count import NOTE
from tests.conftest import DatabaseFactory
from tests.helpers import API, receive_stock
from tests.processes import environment

pytestmark = pytest.mark.backend("postgresql")

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "production-admin-password-71"


def image_command() -> list[str]:
    """The Dockerfile's CMD (exec form)."""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("CMD "):
            command: list[str] = json.loads(line.removeprefix("CMD "))
            return command
    raise AssertionError("the Dockerfile has no CMD")


def migration_command() -> list[str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command: list[str] = compose["services"]["migrate"]["command"]
    return command


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(  # noqa: S603 - the image's own command
            command,
            cwd=cwd,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a failed test stops the workers too
        )


@dataclass
class Production:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    metrics_dir: Path
    secret: str

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


@pytest.fixture
async def production(
    databases: DatabaseFactory, settings: Settings, tmp_path: Path
) -> AsyncIterator[Production]:
    database_url = await databases.create()
    secret = "production-secret-" + os.urandom(16).hex()
    env = environment(
        INVENTORY_ENV="production",
        INVENTORY_DATABASE_URL=database_url,
        INVENTORY_REDIS_URL=settings.redis_url or "",
        INVENTORY_REDIS_KEY_PREFIX=f"{settings.redis_key_prefix}:production",
        INVENTORY_SECRET_KEY=secret,
        INVENTORY_ADMIN_EMAIL="admin@example.com",
        INVENTORY_ADMIN_PASSWORD=ADMIN_PASSWORD,
        INVENTORY_ALLOWED_HOSTS="127.0.0.1,localhost",
        # The shutdown below runs 16 downloads of one user at once.
        INVENTORY_MAX_EXPORTS_PER_USER="16",
        WEB_CONCURRENCY="2",
        PORT=str(port := _free_port()),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir := tmp_path / "metrics"),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    migrated = await asyncio.to_thread(
        subprocess.run,
        migration_command(),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    log = tmp_path / "server.log"
    process = start(image_command(), env, tmp_path, log)
    running = Production(f"http://127.0.0.1:{port}", process, log, metrics_dir, secret)
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as http:
            while True:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                try:
                    if (await http.get(f"{running.url}/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


async def sign_in(url: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post(
            f"{API}/auth/token",
            data={"username": "admin@example.com", "password": ADMIN_PASSWORD},
        )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if not labels and line.startswith(name + " "):
            return float(line.split()[1])
        if line.startswith(name + "{"):
            sample, value = line.rsplit(" ", 1)
            found = ",".join(sorted(sample[len(name) + 1 : -1].split(",")))
            if found == wanted:
                return float(value)
    return 0.0


async def test_the_production_command_serves_logs_counts_and_stops_gracefully(production):
    headers = await sign_in(production.url)
    async with httpx.AsyncClient(base_url=production.url, headers=headers, timeout=30) as api:
        # Data for slower requests: an export streams every movement.
        warehouse = (await api.post(f"{API}/warehouses", json={"code": "P1", "name": "P"})).json()
        product = (
            await api.post(f"{API}/products", json={"sku": "P-1", "name": "P", "unit_price": "1"})
        ).json()
        for _ in range(40):
            moved = await receive_stock(api, product["id"], warehouse["id"], 1)
            assert moved.status_code == 201

        # A known number of requests to one route, over fresh connections (both workers).
        for _ in range(37):
            async with httpx.AsyncClient(base_url=production.url, headers=headers) as fresh:
                assert (await fresh.get(f"{API}/categories/999999")).status_code == 404
        scraped = (await api.get("/metrics")).text
        assert (
            metric(
                scraped,
                "inventory_http_requests_total",
                method="GET",
                route="/api/v1/categories/{entry_id}",
                status="404",
            )
            == 37
        ), scraped
        assert metric(scraped, "inventory_stock_movements_total") == 40
        assert 'inventory_import_jobs{status="queued"} 0.0' in scraped
        assert "inventory_db_connections_in_use" in scraped
        # Summed across workers: each worker's own file holds part of the 37.
        read = MmapedDict.read_all_values_from_file
        per_worker = [
            value
            for path in production.metrics_dir.glob("counter_*.db")
            for key, value, *_ in read(str(path))  # type: ignore[no-untyped-call]
            if '"inventory_http_requests_total"' in key and "/categories/{entry_id}" in key
        ]
        assert sum(per_worker) == 37
        assert len([v for v in per_worker if v]) == 2, per_worker

        # Load, then SIGTERM in the middle of it.
        results: list[int | str] = []

        async def client_loop(stop: asyncio.Event) -> None:
            while not stop.is_set():
                try:
                    response = await api.get(f"{API}/exports/movements.csv")
                    results.append(response.status_code)
                except httpx.TransportError as exc:
                    # After the signal: refused, or an idle kept-alive connection closed
                    # as the next request went out (the server counts below show that no
                    # answer was cut short).
                    results.append(type(exc).__name__)
                    return

        stop = asyncio.Event()
        loops = [asyncio.create_task(client_loop(stop)) for _ in range(16)]
        await asyncio.sleep(1.0)
        before = len(results)
        production.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*loops)
        assert production.process.wait(timeout=60) == 0, production.log.read_text()

    answered = [r for r in results if isinstance(r, int)]
    assert all(status == 200 for status in answered), [r for r in results if r != 200]
    assert len(answered) > before > 0  # requests were in flight when the signal came
    assert len(results) - len(answered) <= len(loops)  # each loop stops at its first error
    exports = [
        json.loads(line)
        for line in production.lines()
        if '"route": "/api/v1/exports/movements.csv"' in line
    ]
    # Every answer the server sent arrived whole: the client counted each one; and
    # no request was still running when the workers' grace period ran out.
    assert len([r for r in exports if r["status"] == 200]) == len(answered)
    assert "timeout graceful shutdown exceeded" not in production.log.read_text()

    # Every line JSON with a request id key; request lines carry theirs; no secrets.
    lines = production.lines()
    records = [json.loads(line) for line in lines]
    assert all("request_id" in record for record in records)
    access = [r for r in records if r["logger"] == "inventory.access"]
    assert len(access) >= 37 + 40
    assert all(r["request_id"] and r["status"] and "duration_ms" in r for r in access)
    assert not [r for r in records if r["level"] in ("ERROR", "CRITICAL")], lines
    text = production.log.read_text()
    assert ADMIN_PASSWORD not in text
    assert production.secret not in text


def json_records(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` as JSON; fails naming the first line that is not."""
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"{path.name} line {number} is not JSON: {line!r}")
    return records


@dataclass
class Started:
    url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=60) == 0, self.stderr.read_text()

    def records(self) -> list[dict[str, Any]]:
        return json_records(self.stdout) + json_records(self.stderr)


@contextmanager
def started(
    command: list[str], env: dict[str, str], tmp_path: Path, port: int
) -> Iterator[Started]:
    """``command`` with its two outputs in two files, once two workers have started."""
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own console scripts
            command, cwd=tmp_path, env=env, stdout=stdout, stderr=stderr, start_new_session=True
        )
    running = Started(f"http://127.0.0.1:{port}", process, out, err)
    try:
        deadline = time.monotonic() + 120  # two workers starting on a busy machine
        while err.read_text(errors="replace").count("Application startup complete") < 2:
            assert process.poll() is None, err.read_text()
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def production_env(database_url: str, secret: str, **more: str) -> dict[str, str]:
    return environment(
        **{
            "INVENTORY_ENV": "production",
            "INVENTORY_DATABASE_URL": database_url,
            "INVENTORY_SECRET_KEY": secret,
            "INVENTORY_ADMIN_EMAIL": "admin@example.com",
            "INVENTORY_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "INVENTORY_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        | more
    )


async def test_serve_with_two_workers_without_redis_writes_only_json(databases, tmp_path):
    secret = "production-secret-" + os.urandom(16).hex()
    env = production_env(await databases.create(), secret)
    port = _free_port()
    command = [str(BIN / "inventory"), "serve", "--workers", "2", "--port", str(port)]
    with started(command, env, tmp_path, port) as server:
        headers = await sign_in(server.url)
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get(f"{API}/products", headers=headers)).status_code == 200
            assert (await http.get(f"{API}/categories/999999", headers=headers)).status_code == 404
            wrong = {"username": "admin@example.com", "password": "not-the-password"}
            assert (await http.post(f"{API}/auth/token", data=wrong)).status_code == 401
            malformed = await http.post(
                f"{API}/categories",
                content=b"{not json",
                headers=headers | {"Content-Type": "application/json"},
            )
            assert malformed.status_code == 422
            refused = await http.get("/health", headers={"Host": "elsewhere.example"})
            assert refused.status_code == 400
        server.stop()

    records = server.records()
    assert {r["logger"] for r in records} >= {
        "alembic.runtime.migration",  # the migration before serving
        "inventory.cli",
        "uvicorn.error",
        "inventory.access",
    }
    notes = [r for r in records if r["message"] == NOTE]
    assert len(notes) == 1
    assert notes[0]["level"] == "WARNING"
    statuses = {r["status"] for r in records if r["logger"] == "inventory.access"}
    assert statuses >= {200, 401, 404, 422, 400}
    assert sum("Application shutdown complete" in r["message"] for r in records) == 2
    assert secret not in server.stderr.read_text() + server.stdout.read_text()


async def test_the_image_command_without_redis_behaves_like_serve_with_workers(databases, tmp_path):
    """gunicorn, 2 workers, no Redis: JSON lines only, and no worker remembers a user, so a
    deactivated one is refused by every worker from the next request on."""
    port = _free_port()
    env = production_env(
        await databases.create(),
        "production-secret-" + os.urandom(16).hex(),
        WEB_CONCURRENCY="2",
        PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    migrated = await asyncio.to_thread(
        subprocess.run, migration_command(), cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    with started(image_command(), env, tmp_path, port) as server:
        admin = await sign_in(server.url)
        clerk = {"email": "clerk@example.com", "password": "clerk-password-1", "role": "clerk"}
        async with httpx.AsyncClient(base_url=server.url) as http:
            made = await http.post(f"{API}/users", json=clerk, headers=admin)
            assert made.status_code == 201, made.text
            signed_in = await http.post(
                f"{API}/auth/token",
                data={"username": clerk["email"], "password": clerk["password"]},
            )
            token = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}

        async def me_on_fresh_connections() -> set[int]:
            """A new connection each: both workers answer some."""
            statuses = set()
            for _ in range(20):
                async with httpx.AsyncClient(base_url=server.url) as fresh:
                    statuses.add((await fresh.get(f"{API}/users/me", headers=token)).status_code)
            return statuses

        assert await me_on_fresh_connections() == {200}
        async with httpx.AsyncClient(base_url=server.url) as http:
            deactivated = await http.patch(
                f"{API}/users/{made.json()['id']}", json={"is_active": False}, headers=admin
            )
            assert deactivated.status_code == 200
        assert await me_on_fresh_connections() == {401}
        server.stop()

    records = server.records()
    assert [r["level"] for r in records if r["message"] == NOTE] == ["WARNING"]
    assert {r["logger"] for r in records} >= {"gunicorn.error", "inventory.access"}


async def test_a_start_that_fails_in_production_writes_only_json_too(databases, tmp_path):
    env = production_env(
        await databases.create(),
        "production-secret-" + os.urandom(16).hex(),
        INVENTORY_ADMIN_EMAIL="not-an-email",
    )
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "inventory"), "serve", "--workers", "2", "--port", str(_free_port())],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=stderr,
            timeout=120,
        )
    records = json_records(out) + json_records(err)
    failures = [r for r in records if r["level"] == "ERROR"]
    assert any("Traceback" in r["message"] for r in failures), records
    assert any("INVENTORY_ADMIN_EMAIL" in r["message"] for r in failures), records

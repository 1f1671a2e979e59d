"""Imports on real Celery workers (RabbitMQ and Redis brokers), started by the tests.

Each test runs a real ``inventory serve`` and real ``inventory worker``
processes against the tests' database, with a queue of its own on the shared
broker. No eager mode: a job is a message a worker process has to take.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.config import Settings
from inventory.jobs import broker
from inventory.jobs.broker import create_celery
from inventory.models import ImportJob, Product, Role
from tests.conftest import Account
from tests.helpers import API, assert_problem
from tests.jobs.workers import (
    BROKERS,
    Deployment,
    celery_worker,
    deployment,
    kill_hard,
    remove_queue,
    require_broker,
)
from tests.netproxy import TcpRelay
from tests.processes import INVENTORY, environment, serving

HEADER = "sku,name,description,category,supplier,unit_price,reorder_level,is_active\n"


def products_csv(count: int) -> bytes:
    rows = (
        f"JOB-{n:06d},Product {n},,Category {n % 40},Supplier {n % 15},{n % 500}.25,{n % 7},true\n"
        for n in range(count)
    )
    return (HEADER + "".join(rows)).encode()


@pytest.fixture(params=sorted(BROKERS))
def deployed(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> Iterator[Deployment]:
    url = BROKERS[request.param]
    require_broker(url)
    deployed = deployment(settings, url, tmp_path)
    yield deployed
    remove_queue(deployed, url)


@pytest.fixture
async def manager(accounts: dict[Role, Account]) -> Account:
    return accounts[Role.manager]


@pytest.fixture
async def api(deployed: Deployment, manager: Account) -> AsyncIterator[httpx.AsyncClient]:
    with serving("--no-migrate", **deployed.env) as server:
        async with httpx.AsyncClient(
            base_url=server.url, headers=manager.headers, timeout=10
        ) as client:
            client.server_pid = server.pid  # type: ignore[attr-defined]
            yield client


async def upload(api: httpx.AsyncClient, content: bytes) -> int:
    response = await api.post(
        f"{API}/imports/products", files={"file": ("products.csv", content, "text/csv")}
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return int(response.json()["id"])


async def job(api: httpx.AsyncClient, job_id: int) -> dict[str, Any]:
    response = await api.get(f"{API}/imports/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def until(
    api: httpx.AsyncClient, job_id: int, *statuses: str, within: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while (found := await job(api, job_id))["status"] not in statuses:
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} never reached {statuses}: {found}")
        await asyncio.sleep(0.1)
    return found


def test_beat_starts_with_the_maintenance_schedule(deployed, tmp_path):
    log = tmp_path / "beat.log"
    with (
        log.open("wb") as sink,
        subprocess.Popen(  # noqa: S603 - our own console script
            [INVENTORY, "beat", f"--schedule={tmp_path / 'schedule'}", "--loglevel=DEBUG"],
            env=environment(**deployed.env),
            stdout=sink,
            stderr=subprocess.STDOUT,
        ) as beat,
    ):
        deadline = time.monotonic() + 30
        while "Waking up" not in (output := log.read_text()):
            if beat.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        beat.terminate()
        beat.wait(timeout=10)
    assert "beat: Starting..." in output, output
    entries = re.findall(r"<ScheduleEntry: (\S+) (\S+)\(\)", output)
    assert sorted(entries) == [
        ("check-ledger-nightly", broker.CHECK_LEDGER),
        ("expire-reservations", broker.EXPIRE_RESERVATIONS),
        ("purge-expired", broker.PURGE_EXPIRED),
        ("sweep-stale-jobs", broker.SWEEP_JOBS),
    ], output


def relayed_broker(deployed: Deployment) -> tuple[TcpRelay, Deployment]:
    """A relay in front of the deployment's broker, and the deployment going through it."""
    broker = urlsplit(deployed.broker_url)
    assert broker.hostname
    assert broker.port
    relay = TcpRelay(broker.hostname, broker.port)
    relayed = broker._replace(netloc=broker.netloc.replace(f":{broker.port}", f":{relay.port}"))
    return relay, deployed.with_broker(urlunsplit(relayed))


def ran_in(found: dict[str, Any]) -> int:
    """The pid the job records for the process that ran it."""
    assert found["worker"].startswith("celery@"), found
    return int(found["worker"].rsplit(":", 1)[1])


async def count(engine: AsyncEngine, statement: Any) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(statement)).scalar_one())


async def test_a_queued_import_waits_for_a_worker_and_runs_in_its_process(
    api, deployed, engine, clerk_stock_drop
):
    job_id = await upload(api, products_csv(3))
    ready = await api.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["broker"] == "ok"
    await asyncio.sleep(2)
    assert (await job(api, job_id))["status"] == "queued"  # nobody runs it: the API does not

    with celery_worker(deployed, "first") as worker:
        done = await until(api, job_id, "succeeded", "failed")
        assert done["status"] == "succeeded", done
        assert done["rows_total"] == 3
        assert done["attempts"] == 1
        assert ran_in(done) in worker.pool_pids()
        assert ran_in(done) != api.server_pid
        # Low-stock reports take the same road: the API sends, the worker reports.
        product_id = await clerk_stock_drop(api)
        deadline = time.monotonic() + 30
        while f"low stock: product {product_id} " not in worker.output():
            assert time.monotonic() < deadline, worker.output()
            await asyncio.sleep(0.1)
        # The maintenance beat sends runs on workers too, one after another in one process.
        sender = create_celery(
            Settings(broker_url=deployed.broker_url, redis_key_prefix=deployed.prefix)
        )
        maintenance = (
            broker.SWEEP_JOBS,
            broker.PURGE_EXPIRED,
            broker.CHECK_LEDGER,
            broker.EXPIRE_RESERVATIONS,
        )
        for name in maintenance:
            sender.send_task(name)
        sender.close()
        for name in maintenance:
            ran = re.compile(rf"Task {re.escape(name)}\[[^\]]+\] succeeded")
            while not ran.search(worker.output()):
                assert time.monotonic() < deadline, worker.output()
                await asyncio.sleep(0.1)
        assert "ledger check: every level equals the sum of its movements" in worker.output()
    skus = select(func.count()).select_from(Product).where(Product.sku.like("JOB-%"))
    assert await count(engine, skus) == 3


@pytest.fixture
def clerk_stock_drop(accounts: dict[Role, Account]) -> Any:
    """Through the API: a product with reorder level 5 goes from 8 to 4 on hand."""

    async def drop(api: httpx.AsyncClient) -> int:
        clerk = accounts[Role.clerk].headers
        warehouse = await api.post(f"{API}/warehouses", json={"code": "LOW", "name": "Low"})
        product = await api.post(
            f"{API}/products",
            json={"sku": "LOW-1", "name": "Runs low", "unit_price": "1.00", "reorder_level": 5},
        )
        assert warehouse.status_code == product.status_code == 201
        ids = {"product_id": product.json()["id"], "warehouse_id": warehouse.json()["id"]}
        for delta in (8, -4):
            moved = await api.post(
                f"{API}/stock/movements",
                json={
                    **ids,
                    "kind": "receipt" if delta > 0 else "shipment",
                    "quantity": abs(delta),
                },
                headers=clerk,
            )
            assert moved.status_code == 201, moved.text
        return int(ids["product_id"])

    return drop


@pytest.mark.backend("postgresql")
async def test_a_worker_killed_mid_import_leaves_nothing_and_another_finishes_it(
    api, deployed, engine
):
    rows = 60_000
    job_id = await upload(api, products_csv(rows))
    with celery_worker(deployed, "doomed") as doomed:
        started = await until(api, job_id, "running", "succeeded", "failed", within=60)
        assert started["status"] == "running", started
        await asyncio.sleep(1.0)  # well into validating or applying
        kill_hard(doomed)
    interrupted = await job(api, job_id)
    assert interrupted["status"] == "running", "the job finished before the kill; make it bigger"
    skus = select(func.count()).select_from(Product).where(Product.sku.like("JOB-%"))
    assert await count(engine, skus) == 0  # nothing half-applied

    with celery_worker(deployed, "rescuer") as rescuer:
        done = await until(api, job_id, "succeeded", "failed", within=180)
        assert done["status"] == "succeeded", done
        assert ran_in(done) in rescuer.pool_pids()
    assert done["attempts"] == 2
    assert done["rows_total"] == rows
    assert await count(engine, skus) == rows
    distinct = select(func.count(func.distinct(Product.sku))).where(Product.sku.like("JOB-%"))
    assert await count(engine, distinct) == rows


@pytest.mark.backend("postgresql")
async def test_a_broker_that_is_down_refuses_uploads_quickly_and_jobs_flow_when_it_returns(
    deployed, manager, engine
):
    relay, through_relay = relayed_broker(deployed)
    relay.start()
    try:
        with (
            serving("--no-migrate", **through_relay.env) as server,
            celery_worker(through_relay, "steady") as _,
        ):
            async with httpx.AsyncClient(
                base_url=server.url, headers=manager.headers, timeout=10
            ) as api:
                before = await until(api, await upload(api, products_csv(2)), "succeeded")
                assert before["status"] == "succeeded"

                relay.stop()
                jobs_before = await count(engine, select(func.count()).select_from(ImportJob))
                started = time.monotonic()
                refused = await api.post(
                    f"{API}/imports/products",
                    files={"file": ("p.csv", products_csv(1), "text/csv")},
                )
                assert time.monotonic() - started < 2.0
                body = assert_problem(refused, 503)
                assert refused.headers["retry-after"]
                assert "queue" in body["detail"]
                assert await count(engine, select(func.count()).select_from(ImportJob)) == (
                    jobs_before
                )
                started = time.monotonic()
                ready = await api.get("/ready")
                assert time.monotonic() - started < 2.0
                assert ready.status_code == 200
                assert ready.json()["status"] == "degraded"
                assert ready.json()["checks"]["broker"] == "unavailable"

                relay.start()  # back, on the same address; nothing restarted
                assert (await api.get("/ready")).json()["checks"]["broker"] == "ok"
                after = await until(api, await upload(api, products_csv(5)), "succeeded")
                assert after["rows_total"] == 5
    finally:
        relay.stop()


@pytest.mark.backend("postgresql")
async def test_uploads_flow_again_after_the_broker_froze(deployed, manager):
    """A broker that stops answering costs each upload a quick 503, and nothing after."""
    relay, through_relay = relayed_broker(deployed)
    relay.start()
    try:
        with (
            serving("--no-migrate", **through_relay.env) as server,
            celery_worker(deployed, "direct") as _,  # the worker itself is not cut off
        ):
            async with httpx.AsyncClient(
                base_url=server.url, headers=manager.headers, timeout=10
            ) as api:
                assert (await until(api, await upload(api, products_csv(1)), "succeeded"))[
                    "status"
                ] == "succeeded"
                relay.hang()
                # More refused uploads than the API keeps pooled broker connections.
                for _ in range(12):
                    started = time.monotonic()
                    refused = await api.post(
                        f"{API}/imports/products",
                        files={"file": ("p.csv", products_csv(1), "text/csv")},
                    )
                    assert time.monotonic() - started < 2.0
                    assert_problem(refused, 503)
                relay.resume()
                deadline = time.monotonic() + 30
                while (
                    answer := await api.post(
                        f"{API}/imports/products",
                        files={"file": ("p.csv", products_csv(4), "text/csv")},
                    )
                ).status_code != 202:
                    assert_problem(answer, 503)  # hung sends may take a while to give up
                    assert time.monotonic() < deadline, "uploads never flowed again"
                    await asyncio.sleep(0.5)
                done = await until(api, answer.json()["id"], "succeeded")
                assert done["rows_total"] == 4
    finally:
        relay.stop()

"""One run of a job, without a broker: claims, redelivery, takeover, stopping, maintenance.

A job may be delivered more than once (a worker dies, a broker redelivers);
these tests deliver it twice on purpose and check it is applied once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.config import Settings
from inventory.csvio import jobs
from inventory.db import Database, utcnow
from inventory.jobs import maintenance
from inventory.models import IdempotencyKey, ImportJob, JobStatus, Product
from tests.helpers import API, create, create_product
from tests.processes import run

HEADER = "sku,name,description,category,supplier,unit_price,reorder_level,is_active\n"


def products_csv(count: int) -> bytes:
    rows = "".join(f"RUN-{n:05d},Product {n},,Tools,,1.50,0,true\n" for n in range(count))
    return (HEADER + rows).encode()


@pytest.fixture
def database(app, accounts) -> Database:
    """The app's database, emptied (``accounts`` empties it)."""
    db: Database = app.state.db
    return db


async def queued_job(database: Database, rows: int = 3) -> int:
    async with database.unit_of_work(write=True) as uow:
        job = await jobs.create_product_import(
            uow.session, None, "p.csv", products_csv(rows), False
        )
    return job.id


async def stored(engine: AsyncEngine, job_id: int) -> ImportJob:
    async with engine.connect() as connection:
        row = (
            await connection.execute(select(ImportJob.__table__).where(ImportJob.id == job_id))
        ).one()
    return ImportJob(**row._asdict())


async def product_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(Product)) or 0)


async def silence(database: Database, job_id: int, seconds: float) -> None:
    """Make the job's last heartbeat ``seconds`` old, as if its run had died then."""
    async with database.unit_of_work(write=True) as uow:
        await uow.session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


async def test_a_job_delivered_twice_at_once_is_applied_once(database, engine):
    job_id = await queued_job(database, rows=50)
    outcomes = await asyncio.gather(
        jobs.run_import_job(database, job_id, worker="first"),
        jobs.run_import_job(database, job_id, worker="second"),
    )
    assert jobs.Outcome.succeeded in outcomes
    assert set(outcomes) - {jobs.Outcome.succeeded} <= {
        jobs.Outcome.busy,
        jobs.Outcome.finished_before,
    }
    job = await stored(engine, job_id)
    assert job.status is JobStatus.succeeded
    assert job.attempts == 1
    assert await product_count(engine) == 50
    # A late redelivery finds it done and changes nothing.
    assert await jobs.run_import_job(database, job_id) is jobs.Outcome.finished_before
    assert (await stored(engine, job_id)).attempts == 1


async def test_a_run_that_lost_its_claim_applies_nothing_and_the_new_run_finishes(database, engine):
    job_id = await queued_job(database, rows=20)
    old = await jobs.claim(database, job_id, "old")
    assert isinstance(old, jobs.Claim)
    assert old.attempt == 1
    # A fresh claim holds: a redelivery now is told to come back later.
    assert await jobs.claim(database, job_id, "early") is jobs.Outcome.busy

    await silence(database, job_id, jobs.LEASE.total_seconds() + 1)
    new = await jobs.claim(database, job_id, "new")
    assert isinstance(new, jobs.Claim)
    assert new.attempt == 2

    # The old run wakes up and does all its work; its commit is refused, whole.
    assert await jobs.run_claimed(database, old) is jobs.Outcome.superseded
    assert await product_count(engine) == 0
    assert (await stored(engine, job_id)).status is JobStatus.running

    assert await jobs.run_claimed(database, new) is jobs.Outcome.succeeded
    job = await stored(engine, job_id)
    assert (job.status, job.attempts, job.worker) == (JobStatus.succeeded, 2, "new")
    assert await product_count(engine) == 20


async def test_a_job_that_kills_every_worker_is_given_up_after_the_last_attempt(
    database, engine, client
):
    job_id = await queued_job(database)
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        claimed = await jobs.claim(database, job_id, f"doomed-{attempt}")
        assert isinstance(claimed, jobs.Claim)
        assert claimed.attempt == attempt
        await silence(database, job_id, jobs.LEASE.total_seconds() + 1)  # the worker died

    assert await jobs.run_import_job(database, job_id) is jobs.Outcome.failed
    found = (await client.get(f"{API}/imports/{job_id}")).json()
    assert found["status"] == "failed"
    assert found["attempts"] == jobs.MAX_ATTEMPTS
    assert found["errors"][0]["message"].startswith(f"gave up after {jobs.MAX_ATTEMPTS} attempts")
    assert await product_count(engine) == 0


async def test_a_run_stopped_from_outside_is_failed_and_applies_nothing(database, engine, client):
    job_id = await queued_job(database, rows=30_000)
    running = asyncio.create_task(jobs.run_import_job(database, job_id, worker="stopped"))
    for _ in range(500):  # polling the database: there is no event to wait on
        if (await stored(engine, job_id)).status is not JobStatus.queued:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # past the claim, into the run
    running.cancel()  # what a time limit or a shutdown does to the run
    with pytest.raises(asyncio.CancelledError):
        await running
    found = (await client.get(f"{API}/imports/{job_id}")).json()
    assert found["status"] == "failed", found
    assert found["errors"][0]["message"] == jobs.STOPPED
    assert await product_count(engine) == 0


async def test_the_sweep_fails_silent_running_jobs_and_leaves_queued_ones_to_the_broker(
    database, engine
):
    waiting = await queued_job(database)
    dead = await queued_job(database)
    assert isinstance(await jobs.claim(database, dead, "dead"), jobs.Claim)
    for job_id in (waiting, dead):
        await silence(database, job_id, jobs.STALE_AFTER.total_seconds() + 1)

    assert await maintenance.sweep_jobs(database, queued_too=False) == 1
    assert (await stored(engine, waiting)).status is JobStatus.queued
    swept = await stored(engine, dead)
    assert swept.status is JobStatus.failed
    assert "interrupted" in swept.errors
    # Without a broker no one else will run a queued job whose process died.
    assert await maintenance.sweep_jobs(database, queued_too=True) == 1
    assert (await stored(engine, waiting)).status is JobStatus.failed


async def test_purge_drops_expired_keys_and_uploads_nobody_took(database, engine, accounts):
    settings = Settings(upload_retention_hours=24)
    user_id = next(iter(accounts.values())).id
    old = utcnow() - timedelta(hours=25)
    async with database.unit_of_work(write=True) as uow:
        for key, created in (("old", old), ("new", utcnow())):
            uow.session.add(
                IdempotencyKey(user_id=user_id, key=key, request_hash="h", created_at=created)
            )
    forgotten, fresh = await queued_job(database), await queued_job(database)
    async with database.unit_of_work(write=True) as uow:
        await uow.session.execute(
            update(ImportJob).where(ImportJob.id == forgotten).values(created_at=old)
        )

    purged = await maintenance.purge_expired(database, settings)
    assert purged == maintenance.Purged(idempotency_keys=1, uploads=1)
    async with engine.connect() as connection:
        keys = (await connection.execute(select(IdempotencyKey.key))).scalars().all()
        content = await connection.scalar(
            select(ImportJob.content).where(ImportJob.id == forgotten)
        )
    assert keys == ["new"]
    assert content is None
    expired = await stored(engine, forgotten)
    assert expired.status is JobStatus.failed
    assert "expired" in expired.errors
    assert (await stored(engine, fresh)).status is JobStatus.queued


async def test_the_ledger_check_counts_and_logs_drift(database, engine, client, caplog):
    warehouse = await create(client, "/warehouses", code="CHK", name="Checked")
    product = await create_product(client, "CHK-1")
    moved = await client.post(
        f"{API}/stock/movements",
        json={
            "product_id": product["id"],
            "warehouse_id": warehouse["id"],
            "kind": "receipt",
            "quantity": 5,
        },
    )
    assert moved.status_code == 201
    assert await maintenance.check_ledger(database) == 0

    async with engine.begin() as connection:  # the drift a bug or a hand edit would leave
        await connection.execute(text("UPDATE stock_levels SET quantity = quantity + 1"))
    caplog.set_level(logging.INFO, logger="inventory.jobs.maintenance")
    assert await maintenance.check_ledger(database) == 1
    assert "1 stock levels differ" in caplog.text
    assert f"product {product['id']} in warehouse {warehouse['id']} has level 6" in caplog.text


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 1, 1, 2, 59, tzinfo=UTC), datetime(2026, 1, 1, 3, 0, tzinfo=UTC)),
        (datetime(2026, 1, 1, 3, 0, tzinfo=UTC), datetime(2026, 1, 2, 3, 0, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), datetime(2027, 1, 1, 3, 0, tzinfo=UTC)),
    ],
)
def test_the_nightly_check_runs_at_three_utc(now, expected):
    assert maintenance.next_nightly_run(now) == expected


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_worker_and_beat_need_a_broker(command, database_url):
    result = run(command, database_url=database_url)
    assert result.returncode == 2
    assert "INVENTORY_BROKER_URL is not set" in result.stderr

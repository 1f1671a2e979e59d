"""One run of a job, without a broker: claims, redelivery, takeover, stopping, maintenance.

A job may be delivered more than once (a worker dies, a broker redelivers);
these tests deliver it twice on purpose and check it is applied once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError

from inventory.config import Settings
from inventory.csvio import products as csv_products
from inventory.csvio.jobs import records, runs, sweeps
from inventory.jobs import maintenance
from inventory.models import IdempotencyKey, ImportJob, JobStatus
from inventory.models.columns import utcnow
from tests.helpers import API, create, create_product, receive_stock
from tests.jobs.runs import product_count, queued_job, silence, stored, until_claimed
from tests.processes import run


async def test_a_job_delivered_twice_at_once_is_applied_once(database, engine):
    job_id = await queued_job(database, rows=50)
    outcomes = await asyncio.gather(
        runs.run_import_job(database, job_id, worker="first"),
        runs.run_import_job(database, job_id, worker="second"),
    )
    assert runs.Outcome.succeeded in outcomes
    assert set(outcomes) - {runs.Outcome.succeeded} <= {
        runs.Outcome.busy,
        runs.Outcome.finished_before,
    }
    job = await stored(engine, job_id)
    assert job.status is JobStatus.succeeded
    assert job.attempts == 1
    assert await product_count(engine) == 50
    # A late redelivery finds it done and changes nothing.
    assert await runs.run_import_job(database, job_id) is runs.Outcome.finished_before
    assert (await stored(engine, job_id)).attempts == 1


async def test_a_run_that_lost_its_claim_applies_nothing_and_the_new_run_finishes(database, engine):
    job_id = await queued_job(database, rows=20)
    old = await runs.claim(database, job_id, "old")
    assert isinstance(old, runs.Claim)
    assert old.attempt == 1
    # A fresh claim holds: a redelivery now is told to come back later.
    assert await runs.claim(database, job_id, "early") is runs.Outcome.busy

    await silence(database, job_id, runs.LEASE.total_seconds() + 1)
    new = await runs.claim(database, job_id, "new")
    assert isinstance(new, runs.Claim)
    assert new.attempt == 2

    # The old run wakes up and does all its work; its commit is refused, whole.
    assert await runs.run_claimed(database, old) is runs.Outcome.superseded
    assert await product_count(engine) == 0
    assert (await stored(engine, job_id)).status is JobStatus.running

    assert await runs.run_claimed(database, new) is runs.Outcome.succeeded
    job = await stored(engine, job_id)
    assert (job.status, job.attempts, job.worker) == (JobStatus.succeeded, 2, "new")
    assert await product_count(engine) == 20


async def test_a_job_that_kills_every_worker_is_given_up_after_the_last_attempt(
    database, engine, client
):
    job_id = await queued_job(database)
    for attempt in range(1, runs.MAX_ATTEMPTS + 1):
        claimed = await runs.claim(database, job_id, f"doomed-{attempt}")
        assert isinstance(claimed, runs.Claim)
        assert claimed.attempt == attempt
        await silence(database, job_id, runs.LEASE.total_seconds() + 1)  # the worker died

    assert await runs.run_import_job(database, job_id) is runs.Outcome.failed
    found = (await client.get(f"{API}/imports/{job_id}")).json()
    assert found["status"] == "failed"
    assert found["attempts"] == runs.MAX_ATTEMPTS
    assert found["errors"][0]["message"].startswith(f"gave up after {runs.MAX_ATTEMPTS} attempts")
    assert await product_count(engine) == 0


async def test_a_run_stopped_from_outside_is_failed_and_applies_nothing(database, engine, client):
    job_id = await queued_job(database, rows=30_000)
    running = asyncio.create_task(runs.run_import_job(database, job_id, worker="stopped"))
    await until_claimed(engine, job_id)
    await asyncio.sleep(0.05)  # past the claim, into the run
    running.cancel()  # what a time limit or a shutdown does to the run
    with pytest.raises(asyncio.CancelledError):
        await running
    found = (await client.get(f"{API}/imports/{job_id}")).json()
    assert found["status"] == "failed", found
    assert found["errors"][0]["message"] == runs.STOPPED
    assert await product_count(engine) == 0


async def test_without_a_broker_the_sweep_fails_silent_jobs(database, engine):
    waiting = await queued_job(database)
    dead = await queued_job(database)
    alive = await queued_job(database)
    assert isinstance(await runs.claim(database, dead, "dead"), runs.Claim)
    assert isinstance(await runs.claim(database, alive, "alive"), runs.Claim)
    for job_id in (waiting, dead):
        await silence(database, job_id, sweeps.STALE_AFTER.total_seconds() + 1)

    # No one else will run a job whose process died, queued or running.
    assert await maintenance.fail_stale_jobs(database) == 2
    for job_id in (waiting, dead):
        swept = await stored(engine, job_id)
        assert swept.status is JobStatus.failed
        assert "interrupted" in swept.errors
    assert (await stored(engine, alive)).status is JobStatus.running


async def test_with_a_broker_the_sweep_queues_a_vanished_job_again_until_out_of_runs(
    database, engine
):
    vanished, worn_out, waiting = [await queued_job(database) for _ in range(3)]
    assert isinstance(await runs.claim(database, vanished, "gone"), runs.Claim)
    for attempt in range(runs.MAX_ATTEMPTS):
        assert isinstance(await runs.claim(database, worn_out, f"gone-{attempt}"), runs.Claim)
        await silence(database, worn_out, runs.LEASE.total_seconds() + 1)
    for job_id in (vanished, worn_out, waiting):
        await silence(database, job_id, sweeps.STALE_AFTER.total_seconds() + 1)

    assert await maintenance.requeue_stale_jobs(database) == [vanished]
    assert (await stored(engine, vanished)).status is JobStatus.queued
    assert (await stored(engine, waiting)).status is JobStatus.queued  # the broker has it
    gave_up = await stored(engine, worn_out)
    assert gave_up.status is JobStatus.failed
    assert "gave up" in gave_up.errors
    # Sent again, the job runs as the next attempt.
    assert await runs.run_import_job(database, vanished) is runs.Outcome.succeeded
    assert (await stored(engine, vanished)).attempts == 2


async def test_a_run_that_meets_a_database_outage_hands_the_job_back(database, engine, monkeypatch):
    job_id = await queued_job(database)

    async def database_gone(*_: object) -> None:
        raise OperationalError("INSERT", {}, ConnectionRefusedError("database gone"))

    monkeypatch.setattr(csv_products, "apply", database_gone)
    with pytest.raises(OperationalError):
        await runs.run_import_job(database, job_id, worker="unlucky")
    handed = await stored(engine, job_id)
    assert (handed.status, handed.attempts, handed.handed_back) == (JobStatus.queued, 1, 1)

    monkeypatch.undo()
    # Handed back runs do not count against the job: it still has all its runs.
    for _ in range(runs.MAX_ATTEMPTS - 1):
        claimed = await runs.claim(database, job_id, "crashes")
        assert isinstance(claimed, runs.Claim)
        await silence(database, job_id, runs.LEASE.total_seconds() + 1)
    assert await runs.run_import_job(database, job_id) is runs.Outcome.succeeded
    assert await product_count(engine) == 3


async def test_an_abandoned_run_records_nothing_so_the_next_delivery_takes_over(database, engine):
    job_id = await queued_job(database, rows=30_000)
    running = asyncio.create_task(runs.run_import_job(database, job_id, worker="going"))
    await until_claimed(engine, job_id)
    await asyncio.sleep(0.05)
    running.cancel(runs.HANDED_BACK)  # what a worker process told to exit does
    with pytest.raises(asyncio.CancelledError):
        await running
    left = await stored(engine, job_id)
    assert (left.status, left.worker) == (JobStatus.running, "going")
    assert await product_count(engine) == 0

    await silence(database, job_id, runs.LEASE.total_seconds() + 1)
    assert await runs.run_import_job(database, job_id, worker="next") is runs.Outcome.succeeded
    assert await product_count(engine) == 30_000


async def test_a_refused_upload_is_only_forgotten_while_no_worker_has_it(database, engine):
    untouched, taken = await queued_job(database), await queued_job(database)
    assert isinstance(await runs.claim(database, taken, "quick"), runs.Claim)
    async with database.unit_of_work(write=True) as uow:
        assert await records.discard(uow.session, untouched) is True
        assert await records.discard(uow.session, taken) is False
    async with engine.connect() as connection:
        left = (await connection.execute(select(ImportJob.id))).scalars().all()
    assert left == [taken]


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
    moved = await receive_stock(client, product["id"], warehouse["id"], 5)
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

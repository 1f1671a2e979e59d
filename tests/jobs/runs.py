"""Import jobs made straight through the service layer, and ways to look at them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.csvio.jobs import records
from inventory.db import Database
from inventory.models import ImportJob, JobStatus, Product
from inventory.models.columns import utcnow

HEADER = "sku,name,description,category,supplier,unit_price,reorder_level,is_active\n"


def products_csv(count: int) -> bytes:
    rows = "".join(f"RUN-{n:05d},Product {n},,Tools,,1.50,0,true\n" for n in range(count))
    return (HEADER + rows).encode()


async def queued_job(database: Database, rows: int = 3) -> int:
    async with database.unit_of_work(write=True) as uow:
        job = await records.create_product_import(
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


async def until_claimed(engine: AsyncEngine, job_id: int) -> None:
    """Wait for a run to take the job (polling: there is no event to wait on)."""
    for _ in range(500):
        if (await stored(engine, job_id)).status is not JobStatus.queued:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"no run took job {job_id}")

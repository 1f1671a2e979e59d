"""Import jobs: created from an upload, run by any process that has the job's id.

The job body takes only ids and reads the file from the database, so the same
function runs after an API response today and on a worker on another machine
later. A job whose process died is failed at the next start, never left
"running" forever.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.csvio import products
from inventory.db import Database, utcnow
from inventory.kit.persistence import get_or_404
from inventory.models import ImportJob, JobStatus

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
STALE_AFTER = timedelta(minutes=5)
"""A queued or running job not heard from for this long is taken to be dead."""


async def create_product_import(
    session: AsyncSession, user_id: int | None, filename: str | None, content: bytes, dry_run: bool
) -> ImportJob:
    """Check the file's encoding and header now (415/422), store it, and queue the job."""
    products.check_header(products.decode(content))
    job = ImportJob(
        user_id=user_id,
        kind="products",
        filename=(filename or "")[:255] or None,
        dry_run=dry_run,
        status=JobStatus.queued,
        content=content,
    )
    session.add(job)
    await session.flush()
    return job


async def get_job(session: AsyncSession, job_id: int) -> ImportJob:
    return await get_or_404(session, ImportJob, job_id, "import job")


def job_errors(job: ImportJob) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = json.loads(job.errors)
    return errors


async def run_import_job(
    database: Database, job_id: int, on_progress: Callable[[int, int], None] | None = None
) -> JobStatus | None:
    """Validate and apply one queued job; return its final status (None if not runnable)."""
    async with database.unit_of_work(write=True) as uow:
        job = await uow.session.get(ImportJob, job_id, with_for_update=True)
        if job is None or job.status is not JobStatus.queued:
            return None
        job.status = JobStatus.running
        job.heartbeat_at = utcnow()
        dry_run = job.dry_run
        content = await uow.session.scalar(select(ImportJob.content).where(ImportJob.id == job_id))
    try:
        return await _run(database, job_id, content or b"", dry_run, on_progress)
    except Exception:
        logger.exception("import job %s failed unexpectedly", job_id)
        await _finish(
            database, job_id, JobStatus.failed, errors=[_note("internal error; see server logs")]
        )
        return JobStatus.failed


async def _run(
    database: Database,
    job_id: int,
    content: bytes,
    dry_run: bool,
    on_progress: Callable[[int, int], None] | None,
) -> JobStatus:
    checked, header = products.check_header(products.decode(content))
    done = [0]

    def progress(count: int) -> None:
        done[0] = count
        if on_progress:
            on_progress(count, 0)

    beating = asyncio.create_task(_heartbeat(database, job_id, done))
    try:
        # Parsing and validating is CPU work: keep it off the event loop.
        validation = await to_thread.run_sync(products.validate, checked, header, progress)
        total = validation.total
        if validation.error_count:
            await _finish(
                database,
                job_id,
                JobStatus.failed,
                total=total,
                done=total,
                errors=validation.reported_errors(),
            )
            return JobStatus.failed
        if dry_run:
            await _finish(database, job_id, JobStatus.succeeded, total=total, done=total)
            return JobStatus.succeeded
        if database.write_gate is not None:
            # SQLite has one writer: a heartbeat would only queue behind this apply.
            beating.cancel()
        async with database.unit_of_work(write=True) as uow:
            await products.apply(uow.session, validation, _in_thread(checked, header))
            await _finish_in(uow.session, job_id, JobStatus.succeeded, total=total, done=total)
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
    if on_progress:
        on_progress(total, total)
    return JobStatus.succeeded


async def _in_thread(
    checked: products.CheckedFile, header: list[str]
) -> AsyncIterator[list[products.ProductRow]]:
    """The second pass's batches, each parsed in a worker thread."""
    batches = products.batches(checked, header)
    while (batch := await to_thread.run_sync(next, batches, None)) is not None:
        yield batch


async def _heartbeat(database: Database, job_id: int, done: list[int]) -> None:
    """Say "still alive" (and how far) every few seconds until cancelled."""
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        try:
            async with database.unit_of_work(write=True) as uow:
                await uow.session.execute(
                    update(ImportJob)
                    .where(ImportJob.id == job_id)
                    .values(heartbeat_at=utcnow(), rows_done=done[0])
                )
        except OperationalError as exc:  # e.g. SQLite busy with this job's own apply
            logger.debug("heartbeat of job %s skipped: %s", job_id, exc)


async def _finish(database: Database, job_id: int, status: JobStatus, **fields: Any) -> None:
    async with database.unit_of_work(write=True) as uow:
        await _finish_in(uow.session, job_id, status, **fields)


async def _finish_in(
    session: AsyncSession,
    job_id: int,
    status: JobStatus,
    *,
    total: int | None = None,
    done: int | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "content": None}
    if total is not None:
        values["rows_total"] = total
    if done is not None:
        values["rows_done"] = done
    if errors is not None:
        values["errors"] = json.dumps(errors)
    await session.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))


def _note(message: str) -> dict[str, Any]:
    return {"row": None, "column": None, "message": message}


async def fail_stale_jobs(session: AsyncSession) -> int:
    """Fail jobs whose process died (no heartbeat for STALE_AFTER); return how many."""
    result = await session.execute(
        update(ImportJob)
        .where(
            ImportJob.status.in_([JobStatus.queued, JobStatus.running]),
            ImportJob.heartbeat_at < utcnow() - STALE_AFTER,
        )
        .values(
            status=JobStatus.failed,
            finished_at=utcnow(),
            content=None,
            errors=json.dumps([_note("interrupted: the process running it stopped")]),
        )
    )
    count: int = result.rowcount  # type: ignore[attr-defined]
    return count

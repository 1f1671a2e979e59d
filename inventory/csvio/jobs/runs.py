"""One run of an import job, by any process that has the job's id.

The job body takes only ids and reads the file from the database, so the same
function runs in the API process (no broker) or on a Celery worker on another
machine. A run first *claims* the job with one conditional UPDATE and gets a
fencing number (``attempts``); everything it writes afterwards is conditional
on that number still being current, and a heartbeat renews its lease. So a job
delivered twice applies once: the import's writes and its ``succeeded`` mark
commit together, or not at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from anyio import to_thread
from sqlalchemy import and_, or_, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.csvio import products
from inventory.csvio.jobs.records import error_note
from inventory.db import Database
from inventory.models import ImportJob, JobStatus
from inventory.models.columns import utcnow

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
LEASE = timedelta(seconds=10)
"""A running job silent this long may be taken over by a redelivery of it."""
MAX_ATTEMPTS = 3
"""Runs a job may have before it is failed (a file that kills its worker every time)."""
STOPPED = "stopped before it finished (time limit or shutdown); nothing was applied"

HANDED_BACK = "handed back"
"""Cancel message: the run is abandoned for another to take over; record nothing."""


class Outcome(StrEnum):
    """What one run of a job came to."""

    succeeded = "succeeded"
    failed = "failed"
    finished_before = "finished_before"
    """Nothing to do: the job is gone, or another run already finished it."""
    busy = "busy"
    """Another run holds it and was heard from within the LEASE: try again later."""
    superseded = "superseded"
    """A newer run took the job over; this one applied nothing."""


class Superseded(Exception):
    """This run's claim is no longer the current one."""


@dataclass(frozen=True)
class Claim:
    job_id: int
    attempt: int
    dry_run: bool
    content: bytes


def this_process() -> str:
    """How a job records the process that ran it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_transient(exc: BaseException) -> bool:
    """A failure worth running the job again for: the database or the network was away."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout | OSError | TimeoutError)


async def run_import_job(
    database: Database,
    job_id: int,
    *,
    worker: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Outcome:
    """Claim, validate and apply one job, as the process named ``worker``.

    Raises only when the database or the network failed on the way (see
    ``is_transient``): the caller runs it again later, and this run's claim
    lapses after the LEASE.
    """
    claimed = await claim(database, job_id, worker or this_process())
    if not isinstance(claimed, Claim):
        return claimed
    return await run_claimed(database, claimed, on_progress)


async def run_claimed(
    database: Database, claimed: Claim, on_progress: Callable[[int, int], None] | None = None
) -> Outcome:
    """Validate and apply a job this run has claimed (see ``run_import_job``)."""
    try:
        return await _run(database, claimed, on_progress)
    except Superseded:
        logger.warning(
            "import job %s was taken over by a newer run; this one applied nothing",
            claimed.job_id,
        )
        return Outcome.superseded
    except asyncio.CancelledError as exc:
        # Its process is going away and the broker will deliver the job again: the
        # claim lapses and the next run takes over. Otherwise (a time limit, an
        # in-process shutdown) nothing was applied, and the job says so.
        if HANDED_BACK not in exc.args:
            await _finish(database, claimed, JobStatus.failed, errors=[error_note(STOPPED)])
        raise
    except Exception as exc:
        if is_transient(exc):
            await _hand_back(database, claimed)
            raise
        logger.exception("import job %s failed unexpectedly", claimed.job_id)
        await _finish(
            database,
            claimed,
            JobStatus.failed,
            errors=[error_note("internal error; see server logs")],
        )
        return Outcome.failed


async def claim(database: Database, job_id: int, worker: str) -> Claim | Outcome:
    """Take the job for one run: queued, or running but silent past the LEASE."""
    now = utcnow()
    async with database.unit_of_work(write=True) as uow:
        session = uow.session
        taken = (
            await session.execute(
                update(ImportJob)
                .where(
                    ImportJob.id == job_id,
                    ImportJob.attempts - ImportJob.handed_back < MAX_ATTEMPTS,
                    or_(
                        ImportJob.status == JobStatus.queued,
                        and_(
                            ImportJob.status == JobStatus.running,
                            ImportJob.heartbeat_at < now - LEASE,
                        ),
                    ),
                )
                .values(
                    status=JobStatus.running,
                    attempts=ImportJob.attempts + 1,
                    worker=worker[:255],
                    heartbeat_at=now,
                )
                .returning(ImportJob.attempts, ImportJob.dry_run, ImportJob.content)
            )
        ).one_or_none()
        if taken is not None:
            return Claim(job_id, taken.attempts, taken.dry_run, taken.content or b"")
        job = await session.get(ImportJob, job_id)
        if job is None or job.status in (JobStatus.succeeded, JobStatus.failed):
            return Outcome.finished_before
        if job.status is JobStatus.running and job.heartbeat_at >= now - LEASE:
            return Outcome.busy
        # Silent, and out of attempts: each run so far died without a word.
        lapsed = Claim(job_id, job.attempts, job.dry_run, b"")
        gave_up = error_note(f"gave up after {MAX_ATTEMPTS} attempts; see the workers' logs")
        try:
            await _finish_in(session, lapsed, JobStatus.failed, errors=[gave_up])
        except Superseded:  # another delivery got there first
            return Outcome.finished_before
        return Outcome.failed


async def _run(
    database: Database, claimed: Claim, on_progress: Callable[[int, int], None] | None
) -> Outcome:
    checked, header = products.check_header(products.decode(claimed.content))
    done = [0]

    def progress(count: int) -> None:
        done[0] = count
        if on_progress:
            on_progress(count, 0)

    beating = asyncio.create_task(_heartbeat(database, claimed, done))
    try:
        # Parsing and validating is CPU work: keep it off the event loop.
        validation = await to_thread.run_sync(products.validate, checked, header, progress)
        total = validation.total
        if validation.error_count:
            errors = validation.reported_errors()
            await _finish(database, claimed, JobStatus.failed, total=total, errors=errors)
            return Outcome.failed
        if claimed.dry_run:
            await _finish(database, claimed, JobStatus.succeeded, total=total)
            return Outcome.succeeded
        if database.write_gate is not None:
            # SQLite has one writer: a heartbeat would only queue behind this apply.
            beating.cancel()
        async with database.unit_of_work(write=True) as uow:
            await products.apply(uow.session, validation, _in_thread(checked, header))
            # Last, so heartbeats go on during the apply; a lost claim rolls it all back.
            await _finish_in(uow.session, claimed, JobStatus.succeeded, total=total)
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
    if on_progress:
        on_progress(total, total)
    return Outcome.succeeded


async def _in_thread(
    checked: products.CheckedFile, header: list[str]
) -> AsyncIterator[list[products.ProductRow]]:
    """The second pass's batches, each parsed in a worker thread."""
    batches = products.batches(checked, header)
    while (batch := await to_thread.run_sync(next, batches, None)) is not None:
        yield batch


async def _heartbeat(database: Database, claimed: Claim, done: list[int]) -> None:
    """Say "still alive" (and how far) every few seconds until cancelled."""
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        try:
            async with database.unit_of_work(write=True) as uow:
                await uow.session.execute(
                    update(ImportJob)
                    .where(ImportJob.id == claimed.job_id, ImportJob.attempts == claimed.attempt)
                    .values(heartbeat_at=utcnow(), rows_done=done[0])
                )
        except Exception as exc:  # e.g. SQLite busy; the next beat tries again
            logger.debug("heartbeat of job %s skipped: %s", claimed.job_id, exc)


async def _hand_back(database: Database, claimed: Claim) -> None:
    """Best effort: queue the job again, not counting this run against it."""
    try:
        async with database.unit_of_work(write=True) as uow:
            await uow.session.execute(
                update(ImportJob)
                .where(
                    ImportJob.id == claimed.job_id,
                    ImportJob.attempts == claimed.attempt,
                    ImportJob.status == JobStatus.running,
                )
                .values(status=JobStatus.queued, handed_back=ImportJob.handed_back + 1)
            )
    except Exception as exc:  # the database is still away: the claim lapses instead
        logger.debug("could not hand job %s back: %s", claimed.job_id, exc)


async def _finish(database: Database, claimed: Claim, status: JobStatus, **fields: Any) -> None:
    """Record how the run ended, in a transaction of its own."""
    try:
        async with database.unit_of_work(write=True) as uow:
            await _finish_in(uow.session, claimed, status, **fields)
    except Superseded:
        logger.warning("import job %s: a newer run holds it; not marked %s", claimed.job_id, status)


async def _finish_in(
    session: AsyncSession,
    claimed: Claim,
    status: JobStatus,
    *,
    total: int | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> None:
    """Mark the job finished if this run's claim is still current; else raise Superseded."""
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "content": None}
    if total is not None:
        values["rows_total"] = values["rows_done"] = total
    if errors is not None:
        values["errors"] = json.dumps(errors)
    result = await session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == claimed.job_id,
            ImportJob.attempts == claimed.attempt,
            ImportJob.status == JobStatus.running,
        )
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Superseded

"""Sweeps over import jobs: fail or requeue the ones whose run went silent, expire old uploads."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.csvio.jobs.records import error_note
from inventory.csvio.jobs.runs import MAX_ATTEMPTS
from inventory.models import ImportJob, JobStatus
from inventory.models.columns import utcnow

STALE_AFTER = timedelta(minutes=5)
"""A running job silent this long is failed by the sweep: no redelivery is coming."""


async def fail_stale_jobs(session: AsyncSession) -> int:
    """No broker: fail queued or running jobs not heard from for STALE_AFTER (their
    process died, and no one else will run them); return how many."""
    silent = ImportJob.heartbeat_at < utcnow() - STALE_AFTER
    return await _fail_where(
        session,
        ImportJob.status.in_([JobStatus.running, JobStatus.queued]) & silent,
        "interrupted: the process running it stopped",
    )


async def requeue_stale_jobs(session: AsyncSession) -> list[int]:
    """With a broker: running jobs silent for STALE_AFTER go back to the queue; the
    caller sends their ids again. Those out of runs are failed. Returns the ids."""
    silent = (ImportJob.status == JobStatus.running) & (
        ImportJob.heartbeat_at < utcnow() - STALE_AFTER
    )
    runs = ImportJob.attempts - ImportJob.handed_back
    await _fail_where(
        session,
        silent & (runs >= MAX_ATTEMPTS),
        f"gave up after {MAX_ATTEMPTS} attempts; see the workers' logs",
    )
    requeued = await session.scalars(
        update(ImportJob)
        .where(silent & (runs < MAX_ATTEMPTS))
        .values(status=JobStatus.queued, heartbeat_at=utcnow())
        .returning(ImportJob.id)
    )
    return list(requeued)


async def expire_uploads(session: AsyncSession, retention: timedelta) -> int:
    """Fail queued jobs older than ``retention`` and drop their files; return how many."""
    too_old = (ImportJob.status == JobStatus.queued) & (ImportJob.created_at < utcnow() - retention)
    return await _fail_where(session, too_old, f"expired: no worker took it within {retention}")


async def _fail_where(session: AsyncSession, condition: ColumnElement[bool], message: str) -> int:
    result = await session.execute(
        update(ImportJob)
        .where(condition)
        .values(
            status=JobStatus.failed,
            finished_at=utcnow(),
            content=None,
            errors=json.dumps([error_note(message)]),
        )
    )
    count: int = result.rowcount  # type: ignore[attr-defined]
    return count

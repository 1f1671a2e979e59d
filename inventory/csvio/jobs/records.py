"""Import job records: created from an upload, read back, and discarded when never sent."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.csvio import products
from inventory.kit.persistence import get_or_404
from inventory.models import ImportJob, JobStatus


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


def error_note(message: str) -> dict[str, Any]:
    """An entry of a job's errors that belongs to no row (how a run ended)."""
    return {"row": None, "column": None, "message": message}


async def discard(session: AsyncSession, job_id: int) -> bool:
    """Forget a job no worker could be told of; False if a worker has it after all."""
    result = await session.execute(
        delete(ImportJob).where(ImportJob.id == job_id, ImportJob.status == JobStatus.queued)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]

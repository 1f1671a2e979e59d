"""Submitting an import: store the upload as a queued job, then hand it to whoever runs jobs."""

from __future__ import annotations

from typing import Protocol

from inventory.csvio.jobs import records
from inventory.db import Database
from inventory.errors import BrokerUnavailable
from inventory.models import ImportJob


class ImportRunner(Protocol):
    """What submitting needs of the process's job runner (``inventory.jobs.dispatch``)."""

    async def run_import(self, job_id: int) -> None:
        """Have the import job run; BrokerUnavailable when it cannot be handed over."""


async def submit_product_import(
    database: Database,
    runner: ImportRunner,
    user_id: int | None,
    filename: str | None,
    content: bytes,
    dry_run: bool,
) -> ImportJob:
    """Store the upload as a queued job and hand it over; BrokerUnavailable and no job if
    that fails."""
    async with database.unit_of_work(write=True, queued=True) as uow:
        job = await records.create_product_import(uow.session, user_id, filename, content, dry_run)
    # Committed first: a worker told of the job must find it.
    try:
        await runner.run_import(job.id)
    except BrokerUnavailable:
        async with database.unit_of_work(write=True, queued=True) as uow:
            discarded = await records.discard(uow.session, job.id)
        if discarded:
            raise
        # The message did arrive (late): a worker has the job, so it is accepted.
    return job

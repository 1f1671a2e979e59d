"""The worker runtime: a job interrupted the ways Celery interrupts a pool process."""

from __future__ import annotations

import asyncio
import sys

import pytest

from inventory.csvio.jobs import runs
from inventory.models import JobStatus
from tests.jobs.runs import product_count, queued_job, stored
from tests.processes import environment, server_environment


@pytest.mark.parametrize(
    ("mode", "printed", "status"),
    [
        # The soft limit: the job is stopped and says so; no redelivery will come.
        ("time-limit", "time limit", JobStatus.failed),
        # Told to exit: say nothing; the broker delivers the job again.
        ("exit", "exited", JobStatus.running),
    ],
)
async def test_an_interrupted_job_applies_nothing(
    settings, database, engine, mode, printed, status
):
    job_id = await queued_job(database, rows=40_000)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.jobs.interrupted_run",
        str(job_id),
        mode,
        env=environment(**server_environment(settings)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert out.decode().strip() == printed, err.decode()
    job = await stored(engine, job_id)
    assert await product_count(engine) == 0
    assert job.status is status
    if status is JobStatus.failed:
        assert runs.STOPPED in job.errors

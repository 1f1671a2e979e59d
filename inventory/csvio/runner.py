"""The process's job runner as a route dependency, for the route that submits imports."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from inventory.jobs.dispatch import JobRunner


async def get_job_runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.jobs
    return runner


JobRunnerDep = Annotated[JobRunner, Depends(get_job_runner)]

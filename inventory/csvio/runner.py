"""The process's job runner as a route dependency, for the route that submits imports."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from inventory.csvio.jobs.submit import ImportRunner


async def get_job_runner(request: Request) -> ImportRunner:
    runner: ImportRunner = request.app.state.jobs
    return runner


JobRunnerDep = Annotated[ImportRunner, Depends(get_job_runner)]

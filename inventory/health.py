"""Liveness and readiness probes at the root of the service."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from inventory.jobs.dispatch import JobRunner
from inventory.problems import problem, problem_responses
from inventory.readiness import ping

READY_TIMEOUT_SECONDS = 1.5  # answers within 2 s, with room for the request itself

logger = logging.getLogger(__name__)
router = APIRouter(tags=["service"])


@router.get("/health", summary="Liveness: the process is serving")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: the database answers; Redis and the job broker are reported",
    responses=problem_responses(503),
)
async def ready(request: Request) -> Any:
    """Only the database decides: without Redis or the broker reads and writes still
    answer, so taking every instance out of the load balancer would only make it worse."""
    runner: JobRunner = request.app.state.jobs
    database_ok, broker_ok = await asyncio.gather(
        _database_answers(request), runner.broker_reachable()
    )
    checks = {"database": "ok" if database_ok else "unavailable"}
    listener = request.app.state.cache.listener
    if listener is not None:
        # Not hearing Redis: this process serves every read from the database meanwhile.
        checks["redis"] = "ok" if listener.connected else "degraded"
    if broker_ok is not None:
        # Uploads get 503 meanwhile; everything else answers.
        checks["broker"] = "ok" if broker_ok else "unavailable"
    if not database_ok:
        return problem(
            request, 503, "The database is not reachable.", code="not-ready", checks=checks
        )
    status = "ready" if all(v == "ok" for v in checks.values()) else "degraded"
    return JSONResponse({"status": status, "checks": checks})


async def _database_answers(request: Request) -> bool:
    try:
        await ping(request.app.state.db.engine, within_seconds=READY_TIMEOUT_SECONDS)
    except Exception as exc:  # every failure means "not ready"
        logger.warning("readiness check failed: %s: %s", type(exc).__name__, exc)
        return False
    return True

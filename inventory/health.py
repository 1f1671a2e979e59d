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
    summary="Readiness: the database (and the job broker, when configured) answers; "
    "Redis is reported",
    responses=problem_responses(503),
)
async def ready(request: Request) -> Any:
    runner: JobRunner = request.app.state.jobs
    database_ok, broker_ok = await asyncio.gather(
        _database_answers(request), runner.broker_reachable()
    )
    checks = {"database": "ok" if database_ok else "unreachable"}
    if broker_ok is not None:
        checks["broker"] = "ok" if broker_ok else "unreachable"
    if not database_ok or broker_ok is False:
        down = " and ".join(part for part, state in checks.items() if state != "ok")
        return problem(
            request, 503, f"The {down} is not reachable.", code="not-ready", checks=checks
        )
    listener = request.app.state.cache.listener
    if listener is not None:
        # Degraded, not unready: without Redis every read still answers, from the database.
        checks["redis"] = "ok" if listener.connected else "degraded"
    status = "ready" if all(v == "ok" for v in checks.values()) else "degraded"
    return JSONResponse({"status": status, "checks": checks})


async def _database_answers(request: Request) -> bool:
    try:
        await ping(request.app.state.db.engine, within_seconds=READY_TIMEOUT_SECONDS)
    except Exception as exc:  # every failure means "not ready"
        logger.warning("readiness check failed: %s: %s", type(exc).__name__, exc)
        return False
    return True

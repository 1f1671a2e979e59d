"""Prometheus metrics: what is counted, and the ``/metrics`` page that shows it.

With several worker processes (gunicorn, ``serve --workers``) each process
writes its numbers to files under ``PROMETHEUS_MULTIPROC_DIR`` and the page
sums them, so a scrape of any worker sees the whole server. Import jobs by
status are read from the database at scrape time: they are the same for every
process and machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory import events
from inventory.models import ImportJob

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "inventory_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "inventory_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge(
    "inventory_http_requests_in_flight",
    "HTTP requests being answered now.",
    multiprocess_mode="livesum",
)
SHED_REQUESTS = Counter(
    "inventory_http_requests_shed_total",
    "HTTP requests refused with 503 past the process's concurrency limit (load shedding).",
)
DB_CONNECTIONS_IN_USE = Gauge(
    "inventory_db_connections_in_use",
    "Database connections checked out of the pools.",
    multiprocess_mode="livesum",
)
DB_CONNECTIONS_OPEN = Gauge(
    "inventory_db_connections_open",
    "Database connections the pools hold open.",
    multiprocess_mode="livesum",
)
CACHE_LOOKUPS = Counter("inventory_cache_lookups_total", "Response cache lookups.", ["result"])
CACHE_HITS = CACHE_LOOKUPS.labels(result="hit")
CACHE_MISSES = CACHE_LOOKUPS.labels(result="miss")
MOVEMENTS = Counter("inventory_stock_movements_total", "Stock ledger entries committed.")

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    registry = _registry()
    registry.register(_ImportJobs(await _job_counts(request.app.state.db.engine)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    from prometheus_client import REGISTRY

    # A registry of our own, so the scrape-time collector is not added to the global one.
    own = CollectorRegistry()
    own.register(_Forward(REGISTRY))
    return own


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()


async def _job_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(ImportJob.status, func.count()).group_by(ImportJob.status)
        )
        return {str(status): int(count) for status, count in rows}


class _ImportJobs(Collector):
    def __init__(self, counts: dict[str, int]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "inventory_import_jobs", "Import jobs by status.", labels=["status"]
        )
        for status in ("queued", "running", "succeeded", "failed"):
            family.add_metric([status], self._counts.get(status, 0))
        yield family


async def count_committed(committed: Sequence[events.Event]) -> None:
    """After commit: count the ledger entries (a listener of the unit of work)."""
    movements = {e.movement_id for e in committed if isinstance(e, events.StockChanged)}
    if movements:
        MOVEMENTS.inc(len(movements))


def watch_pool(engine: AsyncEngine) -> None:
    """Keep the connection gauges up to date from the pool's own events."""
    pool = engine.sync_engine.pool

    def on_connect(*_: Any) -> None:
        DB_CONNECTIONS_OPEN.inc()

    def on_close(*_: Any) -> None:
        DB_CONNECTIONS_OPEN.dec()

    def on_checkout(*_: Any) -> None:
        DB_CONNECTIONS_IN_USE.inc()

    def on_checkin(*_: Any) -> None:
        DB_CONNECTIONS_IN_USE.dec()

    event.listen(pool, "connect", on_connect)
    event.listen(pool, "close", on_close)
    event.listen(pool, "checkout", on_checkout)
    event.listen(pool, "checkin", on_checkin)

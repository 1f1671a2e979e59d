"""The Celery tasks: thin, synchronous wrappers around the domains' job bodies.

``celery -A inventory.jobs.tasks worker`` (or ``inventory worker``) loads this
module; the API process only sends tasks by name and never imports it.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Task
from celery.signals import setup_logging, worker_process_init, worker_process_shutdown

from inventory.config import load_settings
from inventory.csvio.jobs import runs
from inventory.events import LowStock
from inventory.jobs import broker, maintenance, runtime
from inventory.logs import configure_logging
from inventory.stock.service import report_low_stock

logger = logging.getLogger(__name__)

MAX_TRANSIENT_RETRIES = 10  # about eight minutes of backoff

app = broker.create_celery(load_settings())


@setup_logging.connect
def _configure_logging(loglevel: str | int | None = None, **_: Any) -> None:
    """Workers and beat log as the API does (JSON in production), not Celery's format."""
    configure_logging(load_settings(), loglevel or "INFO")


@worker_process_init.connect
def _open_runtime(**_: Any) -> None:
    runtime.current()  # each pool process opens its own database, after the fork


@worker_process_shutdown.connect
def _close_runtime(**_: Any) -> None:
    runtime.close()


@app.task(name=broker.IMPORT_PRODUCTS, bind=True, max_retries=MAX_TRANSIENT_RETRIES)
def import_products(self: Task[Any, Any], job_id: int) -> str:
    """Run one import job; a second delivery of it applies nothing twice."""
    worker = f"celery@{runs.this_process()}"
    try:
        outcome = runtime.current().run(
            lambda database: runs.run_import_job(database, job_id, worker=worker)
        )
    except Exception as exc:
        if not runs.is_transient(exc):
            raise
        # The database or network was away: try again with backoff; the claim lapses meanwhile.
        countdown = min(5 * 2**self.request.retries, 60) + random.uniform(0, 1)  # noqa: S311
        logger.warning("import job %s: %s; retrying in %.0f s", job_id, exc, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
    if outcome is runs.Outcome.busy:
        # Another run holds it and is alive: look again once its lease could have lapsed.
        raise self.retry(countdown=runs.LEASE.total_seconds(), max_retries=None)
    return outcome.value


@app.task(name=broker.REPORT_LOW_STOCK)
def report_low_stock_task(product_id: int, warehouse_id: int, quantity: int, reorder: int) -> None:
    report_low_stock(LowStock(product_id, warehouse_id, quantity, reorder))


@app.task(name=broker.SWEEP_JOBS)
def sweep_jobs() -> list[int]:
    """Send again the jobs whose worker vanished without the broker delivering them again."""
    requeued = runtime.current().run(maintenance.requeue_stale_jobs)
    for job_id in requeued:
        import_products.delay(job_id)
    return requeued


@app.task(name=broker.PURGE_EXPIRED)
def purge_expired() -> dict[str, int]:
    settings = runtime.current().settings
    purged = runtime.current().run(lambda db: maintenance.purge_expired(db, settings))
    return {
        "idempotency_keys": purged.idempotency_keys,
        "uploads": purged.uploads,
        "refresh_tokens": purged.refresh_tokens,
    }


@app.task(name=broker.CHECK_LEDGER)
def check_ledger() -> int:
    return runtime.current().run(maintenance.check_ledger)


@app.task(name=broker.EXPIRE_RESERVATIONS)
def expire_reservations() -> int:
    """Mark the holds whose expiry has passed ``expired``; how many were."""
    return runtime.current().run(maintenance.expire_reservations)

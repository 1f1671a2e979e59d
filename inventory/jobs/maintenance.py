"""Periodic maintenance: its job bodies, and its schedule when no broker is configured.

With a broker, Celery beat sends these on ``broker.BEAT_SCHEDULE``; without
one each API process runs them itself (every statement is idempotent, so
several processes doing so is harmless).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from inventory import idempotency
from inventory.config import Settings
from inventory.csvio.jobs import sweeps
from inventory.db import Database
from inventory.jobs.broker import (
    EXPIRE_RESERVATIONS_EVERY_SECONDS,
    LEDGER_CHECK_HOUR_UTC,
    PURGE_EVERY_SECONDS,
    SWEEP_EVERY_SECONDS,
)
from inventory.models.columns import utcnow
from inventory.reservations import service as reservations
from inventory.stock.service import find_ledger_discrepancies
from inventory.users import sessions

logger = logging.getLogger(__name__)

DRIFT_LOGGED = 20
"""Levels named in the log when the ledger check finds drift (the count is always logged)."""


async def fail_stale_jobs(database: Database) -> int:
    """No broker: fail jobs whose process died (no one else will run them)."""
    async with database.unit_of_work(write=True) as uow:
        failed = await sweeps.fail_stale_jobs(uow.session)
    if failed:
        logger.warning("marked %s interrupted import jobs as failed", failed)
    return failed


async def requeue_stale_jobs(database: Database) -> list[int]:
    """With a broker: queue again the jobs whose worker vanished; the ids to send."""
    async with database.unit_of_work(write=True) as uow:
        requeued = await sweeps.requeue_stale_jobs(uow.session)
    if requeued:
        logger.warning("import jobs %s lost their worker; queued again", requeued)
    return requeued


@dataclass(frozen=True)
class Purged:
    idempotency_keys: int
    uploads: int
    refresh_tokens: int = 0


async def purge_expired(database: Database, settings: Settings) -> Purged:
    """Delete expired idempotency keys and refresh tokens; drop uploads no worker took in time."""
    retention = timedelta(hours=settings.upload_retention_hours)
    # One table per transaction: short locks, taken in no order that could deadlock.
    async with database.unit_of_work(write=True) as uow:
        keys = await idempotency.purge_expired(uow.session)
    async with database.unit_of_work(write=True) as uow:
        uploads = await sweeps.expire_uploads(uow.session, retention)
    async with database.unit_of_work(write=True) as uow:
        refresh_tokens = await sessions.purge_expired(uow.session)
    purged = Purged(keys, uploads, refresh_tokens)
    if uploads:
        logger.warning("dropped %s uploads no worker took within %s", uploads, retention)
    logger.info(
        "purged %s expired idempotency keys and %s expired refresh tokens",
        purged.idempotency_keys,
        purged.refresh_tokens,
    )
    return purged


async def check_ledger(database: Database) -> int:
    """Compare every level with the sum of its movements; log and count the drift."""
    async with database.unit_of_work(write=False) as uow:
        drift = await find_ledger_discrepancies(uow.session)
    if not drift:
        logger.info("ledger check: every level equals the sum of its movements")
        return 0
    logger.error("ledger check: %s stock levels differ from their movements", len(drift))
    for found in drift[:DRIFT_LOGGED]:
        logger.error(
            "ledger drift: product %s in warehouse %s has level %s, movements sum to %s",
            found.product_id,
            found.warehouse_id,
            found.level,
            found.ledger_sum,
        )
    return len(drift)


async def expire_reservations(database: Database, batch: int = reservations.SWEEP_BATCH) -> int:
    """Mark every hold whose expiry has passed ``expired``, a batch per transaction; how many.

    Stock is not touched: an expired hold stopped counting when its time
    passed. Each batch is claimed conditionally, so processes sweeping at
    once (or a confirmation racing one) never take the same reservation twice.
    """
    marked = 0
    while True:
        async with database.unit_of_work(write=True) as uow:
            claimed = await reservations.sweep_expired(uow.session, limit=batch)
        marked += len(claimed)
        if not claimed:
            break
    if marked:
        logger.info("marked %s reservations expired", marked)
    return marked


def next_nightly_run(now: datetime) -> datetime:
    """The next LEDGER_CHECK_HOUR_UTC o'clock after ``now`` (UTC)."""
    today = now.replace(hour=LEDGER_CHECK_HOUR_UTC, minute=0, second=0, microsecond=0)
    return today if today > now else today + timedelta(days=1)


async def run_in_process(database: Database, settings: Settings) -> None:
    """Without a broker: sweep now and every minute, mark expired holds every minute, purge
    hourly, check the ledger nightly.

    Only the sweep runs at start (a restart is when jobs are found orphaned);
    the rest wait a period, so a process restarted often does not purge each time.
    """

    def every(seconds: float) -> Callable[[datetime], datetime]:
        return lambda now: now + timedelta(seconds=seconds)

    schedule: list[tuple[str, Callable[[], Awaitable[object]], Callable[[datetime], datetime]]] = [
        ("sweep", lambda: fail_stale_jobs(database), every(SWEEP_EVERY_SECONDS)),
        ("purge", lambda: purge_expired(database, settings), every(PURGE_EVERY_SECONDS)),
        (
            "reservation expiry",
            lambda: expire_reservations(database),
            every(EXPIRE_RESERVATIONS_EVERY_SECONDS),
        ),
        ("ledger check", lambda: check_ledger(database), next_nightly_run),
    ]
    now = utcnow()
    due = [
        now,
        now + timedelta(seconds=PURGE_EVERY_SECONDS),
        now + timedelta(seconds=EXPIRE_RESERVATIONS_EVERY_SECONDS),
        next_nightly_run(now),
    ]
    while True:
        for index, (name, work, following) in enumerate(schedule):
            if due[index] > utcnow():
                continue
            try:
                await work()
            except Exception as exc:  # serving goes on; the next run tries again
                logger.warning("maintenance (%s) failed: %s: %s", name, type(exc).__name__, exc)
            due[index] = following(utcnow())
        await asyncio.sleep(max((min(due) - utcnow()).total_seconds(), 0.1))

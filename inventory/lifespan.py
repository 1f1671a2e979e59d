"""The process's services, opened when the app starts and closed when it stops.

The database, the sign-in and write throttles, the password-hash gate, the
per-user stream slots, the one pub/sub listener, the change feed, the
response cache and the job runner, wired to the unit of work's after-commit
listeners in the order a write's answer relies on; and the first admin from
settings.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import SecretStr, ValidationError

from inventory import metrics, security
from inventory.auth.throttle import LoginThrottle, WriteThrottle
from inventory.cache.invalidation import invalidator
from inventory.cache.store import CacheTiers
from inventory.changefeed import ChangeFeed
from inventory.config import Settings
from inventory.db import Database, open_database
from inventory.errors import Conflict
from inventory.jobs.dispatch import job_runner
from inventory.pubsub import PubSubListener
from inventory.shutdown import ShutdownSignal
from inventory.streams.slots import SlotKind, StreamSlots
from inventory.users import service as users

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    database = open_database(settings)
    app.state.db = database
    app.state.login_throttle = LoginThrottle(settings.redis_url, settings.redis_key_prefix)
    app.state.write_throttle = WriteThrottle(
        settings.redis_url, settings.redis_key_prefix, settings.write_rate_limit
    )
    # Each request is handed it by HashGateScope.
    app.state.hash_gate = security.HashGate(settings.max_concurrent_hashes)
    app.state.stream_slots = StreamSlots(
        {
            SlotKind.download: settings.max_exports_per_user,
            SlotKind.live: settings.max_streams_per_user,
        },
        # A dead worker's slots free themselves as soon as a live one cuts off a stalled client.
        lease_seconds=settings.stream_idle_seconds,
        redis_url=settings.redis_url,
        key_prefix=settings.redis_key_prefix,
    )
    metrics.watch_pool(database.engine)
    # One pub/sub listener per process, for the cache's invalidations and the change feed.
    listener = PubSubListener(settings.redis_url) if settings.redis_url else None
    app.state.change_feed = feed = ChangeFeed(
        settings.redis_url, settings.redis_key_prefix, listener
    )
    app.state.cache = tiers = CacheTiers(settings, listener)
    # In-process (and running maintenance in the background), or sent to Celery workers.
    app.state.jobs = runner = job_runner(settings, database)
    # Invalidate first: the response of a write waits for it, so a read after it is fresh.
    database.after_commit.extend(
        (invalidator(tiers), feed.publish, runner.announce, metrics.count_committed)
    )
    if listener is not None:
        listener.start()
        await listener.wait_connected(within=1.0)
    await runner.start()
    # Live streams end at once on SIGTERM instead of holding the shutdown open.
    app.state.shutdown = shutdown = ShutdownSignal()
    shutdown.install()
    try:
        if settings.admin_email and settings.admin_password:
            binding = security.current_gate.set(app.state.hash_gate)
            try:
                await bootstrap_admin(database, settings.admin_email, settings.admin_password)
            finally:
                security.current_gate.reset(binding)
        yield
    finally:
        shutdown.uninstall()
        await runner.close()
        await app.state.login_throttle.close()
        await app.state.write_throttle.close()
        await app.state.stream_slots.close()
        if listener is not None:
            await listener.close()
        await feed.close()
        await tiers.close()
        await database.engine.dispose()


async def bootstrap_admin(database: Database, email: str, password: SecretStr) -> None:
    """Create the first admin from settings; several workers starting at once create one."""
    try:
        async with database.unit_of_work(write=True) as uow:
            created = await users.ensure_admin(uow.session, email, password.get_secret_value())
    except Conflict:
        return  # another worker created it first
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise RuntimeError(f"INVENTORY_ADMIN_EMAIL/INVENTORY_ADMIN_PASSWORD: {problems}") from None
    if created:
        logger.info("created admin %s from INVENTORY_ADMIN_EMAIL", created.email)

"""Handing work to whoever runs it: this process (no broker) or Celery workers.

One job body, two dispatchers. ``InProcessJobs`` runs a job as a task of the
API process and runs the maintenance schedule itself; ``CeleryJobs`` sends the
job's id to the broker and never runs it. Both are after-commit listeners for
low-stock events, so those go the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol

import anyio
from anyio import to_thread

from inventory import events
from inventory.config import Settings
from inventory.csvio.jobs import runs
from inventory.db import Database
from inventory.errors import BrokerUnavailable
from inventory.jobs import broker, maintenance
from inventory.stock.service import report_low_stock

logger = logging.getLogger(__name__)

SEND_DEADLINE_SECONDS = 1.5
"""A job the broker has not confirmed by then is refused as BrokerUnavailable (within 2 s)."""
SHUTDOWN_GRACE_SECONDS = 10.0
"""How long shutdown waits for in-process jobs (or unsent events) before giving up on them."""
OUTBOX_LIMIT = 10_000


class JobRunner(Protocol):
    broker_url: str | None

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def run_import(self, job_id: int) -> None:
        """Have the import job run; BrokerUnavailable when it cannot be handed over."""

    async def announce(self, committed: Sequence[events.Event]) -> None:
        """After commit: report each level that went low."""

    async def broker_reachable(self) -> bool | None:
        """None without a broker."""


def job_runner(settings: Settings, database: Database) -> JobRunner:
    if settings.broker_url:
        return CeleryJobs(settings)
    return InProcessJobs(settings, database)


class InProcessJobs:
    """Jobs as tasks of this process, started at once and awaited at shutdown."""

    broker_url: str | None = None

    def __init__(self, settings: Settings, database: Database) -> None:
        self._settings = settings
        self._database = database
        self._running: set[asyncio.Task[Any]] = set()
        self._maintenance: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._settings.maintenance_in_process:
            self._maintenance = self._spawn(
                maintenance.run_in_process(self._database, self._settings), "maintenance"
            )

    async def run_import(self, job_id: int) -> None:
        self._spawn(runs.run_import_job(self._database, job_id), f"import job {job_id}")

    async def announce(self, committed: Sequence[events.Event]) -> None:
        for event in committed:
            if isinstance(event, events.LowStock):
                report_low_stock(event)

    async def broker_reachable(self) -> None:
        return None

    async def close(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
        if self._running:
            _, unfinished = await asyncio.wait(self._running, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in unfinished:
                task.cancel()  # the job records that it was stopped
            await asyncio.gather(*self._running, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(work, name=name)
        self._running.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A job left running here is failed by the sweep once its heartbeat is old.
            logger.error("%s stopped: %s: %s", task.get_name(), type(exc).__name__, exc)


class CeleryJobs:
    """Jobs sent to Celery workers; this process never runs them."""

    def __init__(self, settings: Settings) -> None:
        self.broker_url: str | None = settings.broker_url
        self._app = broker.create_celery(settings)
        self._outbox: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue(OUTBOX_LIMIT)
        self._sender: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sender = asyncio.create_task(self._send_outbox(), name="job outbox")

    async def run_import(self, job_id: int) -> None:
        await self._send(broker.IMPORT_PRODUCTS, (job_id,))

    async def announce(self, committed: Sequence[events.Event]) -> None:
        # Queued, not sent here: a write's response must not wait on the broker.
        for event in committed:
            if not isinstance(event, events.LowStock):
                continue
            try:
                self._outbox.put_nowait((broker.REPORT_LOW_STOCK, dataclasses.astuple(event)))
            except asyncio.QueueFull:
                logger.error("job outbox full; low-stock report dropped: %s", event)

    async def broker_reachable(self) -> bool:
        try:
            with anyio.fail_after(SEND_DEADLINE_SECONDS):
                await to_thread.run_sync(self._connect, abandon_on_cancel=True)
        except Exception as exc:
            logger.warning("broker unreachable: %s: %s", type(exc).__name__, exc)
            return False
        return True

    async def close(self) -> None:
        if self._sender is not None:
            try:
                with anyio.fail_after(SHUTDOWN_GRACE_SECONDS):
                    await self._outbox.join()
            except TimeoutError:
                logger.error("%s low-stock reports not sent at shutdown", self._outbox.qsize())
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        await to_thread.run_sync(self._app.close)

    async def _send(self, name: str, args: tuple[Any, ...]) -> None:
        try:
            with anyio.fail_after(SEND_DEADLINE_SECONDS):
                await to_thread.run_sync(self._publish, name, args, abandon_on_cancel=True)
        except Exception as exc:
            logger.warning("could not send %s to the broker: %s: %s", name, type(exc).__name__, exc)
            raise BrokerUnavailable(
                "The job queue is unreachable; nothing was recorded. Retry shortly."
            ) from None

    def _publish(self, name: str, args: tuple[Any, ...]) -> None:
        # One quick reconnect covers a pooled connection the broker dropped since.
        self._app.send_task(
            name,
            args=args,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
            timeout=broker.CONNECT_TIMEOUT_SECONDS,
            confirm_timeout=broker.CONNECT_TIMEOUT_SECONDS,
        )

    def _connect(self) -> None:
        with self._app.connection_for_write() as connection:
            connection.connect()

    async def _send_outbox(self) -> None:
        """Send queued events in order, waiting out a broker that is away."""
        backoff = 1.0
        while True:
            name, args = await self._outbox.get()
            while True:
                try:
                    await self._send(name, args)
                    break
                except BrokerUnavailable:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
            backoff = 1.0
            self._outbox.task_done()

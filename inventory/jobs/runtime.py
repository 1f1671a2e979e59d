"""One event loop and one database per worker process, made after the fork.

Celery (5.7) cannot run an ``async def`` task: it calls it, gets a coroutine,
never awaits it and reports success. So tasks stay synchronous and run the
async job bodies here, on a loop this process created, with an engine created
in that loop. A process never uses a runtime its parent made: the pid is
checked, so a fork always starts afresh (an inherited engine would share the
parent's sockets).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from inventory.config import Settings, load_settings
from inventory.csvio.jobs.runs import HANDED_BACK
from inventory.db import Database
from inventory.standalone import standalone_database

T = TypeVar("T")


class WorkerRuntime:
    """The event loop and database of one worker process."""

    def __init__(self, settings: Settings) -> None:
        self.pid = os.getpid()
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._resources = AsyncExitStack()
        self.database: Database = self.loop.run_until_complete(
            self._resources.enter_async_context(standalone_database(settings))
        )

    def run(self, work: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
        """Run ``work(database)`` to the end on this process's loop.

        Celery's soft time limit arrives as SIGUSR1; its own handler would raise
        wherever the loop happens to be. Here the signal cancels the job instead,
        which records that it was stopped. If the process itself is told to go
        (SystemExit from a SIGTERM), the job is abandoned without a word: the
        broker delivers it again and the next run takes over.
        """
        task = self.loop.create_task(work(self.database))
        stopped = _TimeLimitSignal(self.loop, lambda: task.cancel(TIME_LIMIT))
        try:
            return self.loop.run_until_complete(task)
        except asyncio.CancelledError:
            if task.cancelled() and stopped():
                raise JobTimeLimitExceeded(TIME_LIMIT) from None
            raise
        except BaseException:
            if not task.done():
                task.cancel(HANDED_BACK)
                self.loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
            raise
        finally:
            stopped.restore()

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self._resources.aclose())
        finally:
            self.loop.close()


TIME_LIMIT = "the job ran past INVENTORY_JOB_TIME_LIMIT_SECONDS"


class JobTimeLimitExceeded(Exception):
    """The job was stopped at its (soft) time limit and recorded as failed."""


class _TimeLimitSignal:
    """SIGUSR1 → ``on_signal()`` on the loop, for the length of one job."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_signal: Callable[[], object]) -> None:
        self._loop = loop
        self._previous: Any = None
        self._installed = False
        self._fired = False

        def fire() -> None:
            self._fired = True
            on_signal()

        if threading.current_thread() is threading.main_thread():
            # Only the main thread may handle signals (prefork and solo pools run jobs there).
            self._previous = signal.getsignal(signal.SIGUSR1)
            loop.add_signal_handler(signal.SIGUSR1, fire)
            self._installed = True

    def __call__(self) -> bool:
        """Whether the signal came."""
        return self._fired

    def restore(self) -> None:
        if self._installed:
            self._loop.remove_signal_handler(signal.SIGUSR1)
            signal.signal(signal.SIGUSR1, self._previous or signal.SIG_DFL)


_current: WorkerRuntime | None = None


def current() -> WorkerRuntime:
    """This process's runtime, made on first use (after any fork)."""
    global _current
    if _current is None or _current.pid != os.getpid():
        _current = WorkerRuntime(load_settings())
    return _current


def close() -> None:
    global _current
    if _current is not None and _current.pid == os.getpid():
        _current.close()
    _current = None

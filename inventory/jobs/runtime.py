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
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from inventory.config import Settings, load_settings
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
        """Run ``work(database)`` to the end on this process's loop."""
        task = self.loop.create_task(work(self.database))
        try:
            return self.loop.run_until_complete(task)
        except BaseException:
            # A time limit raised in the loop itself: stop the job, let it record so.
            if not task.done():
                task.cancel()
                self.loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
            raise

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self._resources.aclose())
        finally:
            self.loop.close()


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

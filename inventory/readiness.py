"""Whether the database answers: one timed ping, and waiting for it at start-up."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def ping(engine: AsyncEngine, *, within_seconds: float) -> None:
    """Run ``SELECT 1``; raise on failure or when it takes longer than ``within_seconds``."""
    async with asyncio.timeout(within_seconds):
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached within the allowed time."""


async def wait_for_database(engine: AsyncEngine, wait_seconds: float) -> None:
    """Retry a ping with backoff for at most ``wait_seconds``, then raise DatabaseUnavailable."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.25
    while True:
        try:
            await ping(engine, within_seconds=5)
            return
        except Exception as exc:  # any failure to connect means "not yet"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                url = engine.url.render_as_string(hide_password=True)
                raise DatabaseUnavailable(
                    f"database at {url} unreachable after {wait_seconds:g}s: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)

"""The database as a process other than the API server opens it (the CLI, a job worker).

Such a process serves no cached reads, but what it writes makes the servers'
caches stale: its commits tell them through Redis, as a server's do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from inventory.cache.invalidation import invalidator
from inventory.cache.store import CacheTiers
from inventory.config import Settings
from inventory.db import Database, open_database


@asynccontextmanager
async def standalone_database(settings: Settings) -> AsyncIterator[Database]:
    """A database whose commits invalidate the servers' caches; closed on exit."""
    database = open_database(settings)
    tiers = CacheTiers(settings)
    database.after_commit.append(invalidator(tiers))
    try:
        yield database
    finally:
        await tiers.close()
        await database.engine.dispose()

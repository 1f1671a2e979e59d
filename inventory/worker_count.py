"""Several API workers without Redis: what no worker may then keep to itself.

Without Redis nothing tells one worker of another's writes, so every
process-local memory that could answer for the database (cached answers, the
users remembered between requests) is turned off in every worker. One rule
for ``inventory serve --workers N`` and for gunicorn: both call
``share_nothing_locally`` in the parent, before any worker starts, and log the
note it returns once logging is set up.
"""

from __future__ import annotations

import os

from inventory.config import Settings, load_settings

NOTE = (
    "several workers without Redis: response cache and remembered users off; "
    "sign-in and write limits count per worker"
)


def share_nothing_locally(settings: Settings, workers: int) -> str | None:
    """With ``workers`` > 1 and no Redis, set ``INVENTORY_CACHE_ENABLED=false`` for the
    workers about to start, and return the note to log; None when nothing changes."""
    if workers <= 1 or settings.redis_url or not settings.cache_enabled:
        return None
    # The workers read their settings from the environment (forked or spawned).
    os.environ["INVENTORY_CACHE_ENABLED"] = "false"
    load_settings.cache_clear()  # a forked worker would otherwise inherit these, cache on
    return NOTE

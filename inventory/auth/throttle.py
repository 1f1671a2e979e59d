"""Throttles: failed sign-ins per client address and per account, and writes per user.

Each attempt is counted as a failure *before* the password is checked and
handed back once it succeeds, so a burst of concurrent guesses cannot all get
past the limit while their hashes are being verified.

Counts live in Redis when it is configured, so every worker and machine sees
the same numbers; when Redis is unset or unreachable they live in this
process's memory, which still stops a brute-force attempt against one worker
instead of failing every login.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from inventory.errors import TooManyRequests

logger = logging.getLogger(__name__)

FAILED_LOGINS = parse("10/minute")
"""Failed attempts allowed per address and per account; the next one gets 429."""
LOGIN_ATTEMPTS = parse("60/minute")
"""All attempts per address, successful ones included: a ceiling that a person never meets."""


class RateCounters:
    """Fixed-window counts: in Redis when configured (one count for every process and
    machine), in this process's memory otherwise or while Redis is unreachable."""

    def __init__(self, redis_url: str | None, key_prefix: str) -> None:
        self._memory = FixedWindowRateLimiter(MemoryStorage())
        self._shared: FixedWindowRateLimiter | None = None
        self._pool: ConnectionPool | None = None
        if redis_url:
            # Short timeouts: a Redis that hangs must not hold up requests.
            self._pool = ConnectionPool.from_url(
                redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
            storage = RedisStorage(
                f"async+{redis_url}",
                implementation="redispy",
                key_prefix=key_prefix,
                wrap_exceptions=True,
                connection_pool=self._pool,  # type: ignore[arg-type] # typed too narrowly
            )
            self._shared = FixedWindowRateLimiter(storage)

    async def hit(self, item: RateLimitItem, key: str, cost: int = 1) -> bool:
        """Count ``cost`` against ``key``; False when that goes over ``item``."""
        if self._shared is not None:
            try:
                return await self._shared.hit(item, key, cost=cost)
            except StorageError as exc:
                logger.warning("rate-limit storage unavailable, counting in memory: %s", exc)
        return await self._memory.hit(item, key, cost=cost)

    async def retry_after(self, item: RateLimitItem, key: str) -> int:
        """Whole seconds until ``key``'s window resets (at least 1)."""
        reset: float
        try:
            if self._shared is None:
                raise StorageError(RuntimeError("no shared storage"))
            reset = float((await self._shared.get_window_stats(item, key)).reset_time)
        except StorageError:
            reset = float((await self._memory.get_window_stats(item, key)).reset_time)
        return max(1, math.ceil(reset - time.time()))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


class LoginThrottle:
    def __init__(self, redis_url: str | None, key_prefix: str) -> None:
        self._counts = RateCounters(redis_url, f"{key_prefix}:login")

    async def begin(self, address: str, account: str) -> None:
        """Count an attempt as a failure up front; TooManyRequests when over a limit."""
        for item, key in (
            (LOGIN_ATTEMPTS, f"all:addr:{address}"),
            (FAILED_LOGINS, f"fail:addr:{address}"),
            (FAILED_LOGINS, f"fail:acct:{account}"),
        ):
            if not await self._counts.hit(item, key):
                retry_after = await self._counts.retry_after(item, key)
                raise TooManyRequests("Too many sign-in attempts; try again later.", retry_after)

    async def succeeded(self, address: str, account: str) -> None:
        """The attempt was not a failure after all: give back what begin() counted."""
        await self._counts.hit(FAILED_LOGINS, f"fail:addr:{address}", cost=-1)
        await self._counts.hit(FAILED_LOGINS, f"fail:acct:{account}", cost=-1)

    async def close(self) -> None:
        await self._counts.close()


class WriteThrottle:
    """Writes per user, against ``INVENTORY_WRITE_RATE_LIMIT``.

    The rule, the same on both fronts: a request that may write is charged
    once, when its caller is signed in, before it is authorized or its input
    read, with one write for each write it asks for. That is one for a REST
    request whose method is not GET, HEAD or OPTIONS (``deps.signed_in``),
    and one per top-level mutation field for a GraphQL request whose operation
    is a mutation (``graphql_schema.extensions.Transports``), so batching
    mutations into one request buys no more writes. Reads, and requests with
    no valid token, are never charged.
    """

    def __init__(self, redis_url: str | None, key_prefix: str, limit: str) -> None:
        self._item = parse(limit)
        self._counts = RateCounters(redis_url, f"{key_prefix}:writes")

    async def charge(self, user_id: int, writes: int = 1) -> None:
        """Count ``writes`` against the user; TooManyRequests when that goes over the limit."""
        key = str(user_id)
        if not await self._counts.hit(self._item, key, cost=writes):
            retry_after = await self._counts.retry_after(self._item, key)
            raise TooManyRequests("Too many writes; slow down and retry.", retry_after)

    async def close(self) -> None:
        await self._counts.close()

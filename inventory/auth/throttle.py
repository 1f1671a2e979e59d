"""Login throttling: failed attempts per client address and per account.

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
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from inventory.errors import TooManyRequests

logger = logging.getLogger(__name__)

FAILED_LOGINS = parse("10/minute")
"""Failed attempts allowed per address and per account; the next one gets 429."""
LOGIN_ATTEMPTS = parse("60/minute")
"""All attempts per address, successful ones included: a ceiling that a person never meets."""


class LoginThrottle:
    def __init__(self, redis_url: str | None, key_prefix: str) -> None:
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._shared: MovingWindowRateLimiter | None = None
        self._pool: ConnectionPool | None = None
        if redis_url:
            # Short timeouts: a Redis that hangs must not hold up sign-ins.
            self._pool = ConnectionPool.from_url(
                redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
            storage = RedisStorage(
                f"async+{redis_url}",
                implementation="redispy",
                key_prefix=f"{key_prefix}:login",
                wrap_exceptions=True,
                connection_pool=self._pool,  # type: ignore[arg-type] # typed too narrowly
            )
            self._shared = MovingWindowRateLimiter(storage)

    async def check(self, address: str, account: str) -> None:
        """Raise TooManyRequests when this attempt may not even be tried."""
        for item, key in (
            (FAILED_LOGINS, f"fail:addr:{address}"),
            (FAILED_LOGINS, f"fail:acct:{account}"),
        ):
            if not await self._call("test", item, key):
                await self._refuse(item, key)
        if not await self._call("hit", LOGIN_ATTEMPTS, f"all:addr:{address}"):
            await self._refuse(LOGIN_ATTEMPTS, f"all:addr:{address}")

    async def record_failure(self, address: str, account: str) -> None:
        await self._call("hit", FAILED_LOGINS, f"fail:addr:{address}")
        await self._call("hit", FAILED_LOGINS, f"fail:acct:{account}")

    async def _refuse(self, item: RateLimitItem, key: str) -> None:
        reset_time = await self._reset_time(item, key)
        retry_after = max(1, math.ceil(reset_time - time.time()))
        raise TooManyRequests("Too many sign-in attempts; try again later.", retry_after)

    async def _reset_time(self, item: RateLimitItem, key: str) -> float:
        for limiter in self._limiters():
            try:
                return (await limiter.get_window_stats(item, key)).reset_time
            except StorageError:
                continue
        return time.time() + item.get_expiry()

    async def _call(self, method: str, item: RateLimitItem, key: str) -> bool:
        for limiter in self._limiters():
            try:
                allowed: bool = await getattr(limiter, method)(item, key)
                return allowed
            except StorageError as exc:
                logger.warning("rate-limit storage unavailable, counting in memory: %s", exc)
        raise AssertionError("the memory limiter cannot fail")  # pragma: no cover

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    def _limiters(self) -> list[MovingWindowRateLimiter]:
        return [self._shared, self._memory] if self._shared else [self._memory]

"""Throttles: failed sign-ins (OWASP's device-cookie scheme), and writes per user.

A sign-in attempt is counted as a failure *before* the password is checked and
handed back once it succeeds, so a burst of concurrent guesses cannot all get
past a limit while their hashes are being verified. Whose count it goes to
depends on the client:

- a client presenting a valid device cookie for the account (see
  ``inventory.auth.devices``) is counted per device only. It is never held
  back by the account's or the address's failures, so whoever does not know
  the password cannot lock the owner out; a device that fails too often is
  itself locked for the window.
- any other client is counted per address (IPv6 by /64, see
  ``address_group``) and per account: these are the limits an attacker can
  run into, and with them every other stranger to the account.

Counts live in Redis when it is configured, so every worker and machine sees
the same numbers; when Redis is unset or unreachable they live in this
process's memory, which still stops a brute-force attempt against one worker
instead of failing every login.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from inventory.errors import TooManyRequests, Unauthenticated

logger = logging.getLogger(__name__)

FAILED_LOGINS = parse("10/minute")
"""Failed attempts allowed per address and per account from clients without a device
cookie for the account; the next one gets 429."""
LOGIN_ATTEMPTS = parse("60/minute")
"""All attempts per address, successful ones included: a ceiling that a person never meets."""
DEVICE_FAILURES = parse("10/minute")
"""Failed attempts allowed per device cookie; past them that device is locked for the window."""
DEVICE_ATTEMPTS = LOGIN_ATTEMPTS
"""All attempts per device cookie: the same generous ceiling, per device instead of address."""
IPV6_GROUP_PREFIX = 64


def address_group(host: str) -> str:
    """What per-address limits count by: an IPv4 address, or an IPv6 address's /64.

    One subscriber gets at least a /64, so counting single IPv6 addresses would
    let anyone walk around the limit; an IPv4-mapped IPv6 address is its IPv4
    address. Anything else (a Unix socket's peer) is counted as given.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        # From the integer, so a zone (fe80::1%eth0) does not get in the way.
        network = ipaddress.IPv6Network((int(address) >> 64 << 64, IPV6_GROUP_PREFIX))
        return str(network)
    return str(address)


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

    @asynccontextmanager
    async def attempt(self, address: str, account: str, device: str | None) -> AsyncIterator[None]:
        """Count one sign-in attempt around the password check.

        ``device`` is the nonce of a valid device cookie for ``account`` (None without
        one). TooManyRequests when the client is over a limit. The attempt stays
        counted as a failure when the block raises Unauthenticated; it is given back
        when the block ends cleanly, or raises anything else (the password was not
        found wrong: say the service was too busy to check it). A cancelled attempt
        (the client went away) stays counted.
        """
        failures: tuple[tuple[RateLimitItem, str], ...]
        if device is not None:
            limits = ((DEVICE_ATTEMPTS, f"all:device:{device}"),)
            failures = ((DEVICE_FAILURES, f"fail:device:{device}"),)
        else:
            group = address_group(address)
            limits = ((LOGIN_ATTEMPTS, f"all:addr:{group}"),)
            failures = (
                (FAILED_LOGINS, f"fail:addr:{group}"),
                (FAILED_LOGINS, f"fail:acct:{account}"),
            )
        for item, key in limits:
            await self._check(item, key)
        for counted, (item, key) in enumerate(failures):
            try:
                await self._check(item, key)
            except TooManyRequests:
                await self._give_back(failures[:counted])  # no password was checked
                raise
        try:
            yield
        except Unauthenticated:
            raise
        except Exception:
            await self._give_back(failures)
            raise
        await self._give_back(failures)

    async def _check(self, item: RateLimitItem, key: str) -> None:
        if not await self._counts.hit(item, key):
            retry_after = await self._counts.retry_after(item, key)
            raise TooManyRequests("Too many sign-in attempts; try again later.", retry_after)

    async def _give_back(self, failures: tuple[tuple[RateLimitItem, str], ...]) -> None:
        for item, key in failures:
            await self._counts.hit(item, key, cost=-1)

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

"""The response cache: an in-process tier in front of Redis, behind fastapi-cache2's Backend.

Keys carry a generation per namespace they depend on (``products``,
``stock``, …). A write bumps the generations it affects: in this process at
once, in Redis with INCR, and in every other process through Redis pub/sub,
whose handler runs before any request that arrives after the message. Old
entries are never searched for (no KEYS, no prefix scan): no key names them
any more, and they age out (LRU in process, TTL in Redis).

When Redis is configured but unreachable nothing cached is trusted: reads go
to the database, and on reconnecting the process forgets its tier and moves
every key to a new epoch, so nothing written during the outage is hidden.

The process's pub/sub listener (``inventory.pubsub``) runs the invalidation
handler as soon as it reads the message; a lookup that must not miss a message
already on its way gives the listener its turns first (``catch_up``).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import cast

from cachetools import TTLCache
from fastapi_cache.types import Backend
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from inventory.auth.signin import UserBell
from inventory.cache.users import RememberedUsers
from inventory.config import Settings
from inventory.models import User
from inventory.pubsub import PubSubListener

logger = logging.getLogger(__name__)

NAMESPACES = ("products", "stock", "categories", "suppliers", "warehouses")
LOCAL_TTL_SECONDS = 60  # bounds staleness should an invalidation ever be missed
LOCAL_TTL_WITHOUT_REDIS = 5  # a CLI process cannot reach this one's tier without Redis


# One atomic "set if lower" (no KEYS, no scan): counters never go back.
_AT_LEAST = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if current < wanted then
  redis.call('SET', KEYS[1], wanted)
  return wanted
end
return current
"""


def redis_client(url: str) -> Redis:
    """A client that fails fast: no retries, short timeouts (a dead Redis costs no request)."""
    return Redis.from_url(
        url,
        socket_connect_timeout=0.2,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


class CacheTiers(Backend):
    """fastapi-cache2 backend: this process's tier, then Redis (when configured)."""

    def __init__(self, settings: Settings, listener: PubSubListener | None = None) -> None:
        """Without a ``listener``, a process that only writes (the CLI): it tells, never hears."""
        self.prefix = f"{settings.redis_key_prefix}:cache"
        self.ttl = settings.cache_ttl_seconds
        self.enabled = settings.cache_enabled
        self._local: TTLCache[str, bytes] = TTLCache(
            maxsize=settings.cache_local_bytes,
            ttl=LOCAL_TTL_SECONDS if settings.redis_url else LOCAL_TTL_WITHOUT_REDIS,
            getsizeof=len,
        )
        self._users = RememberedUsers(ttl=self._local.ttl)
        self.generations = dict.fromkeys(NAMESPACES, 0)
        self.epoch = 0
        self._origin = uuid.uuid4().hex
        self._pending: set[str] = set()
        self.redis: Redis | None = None
        self.listener: PubSubListener | None = None
        if settings.redis_url:
            self.redis = redis_client(settings.redis_url)
        if settings.redis_url and listener is not None:
            self.listener = listener
            listener.listen(
                self.channel,
                self._on_message,
                on_connect=self._on_connect,
                on_disconnect=self._forget,
            )
        self.hits = 0
        self.misses = 0

    @property
    def channel(self) -> str:
        return f"{self.prefix}:invalidate"

    @property
    def connected(self) -> bool:
        """Redis, if any, is reachable as far as this process has heard."""
        return self.listener is None or self.listener.connected

    @property
    def usable(self) -> bool:
        """Cached answers may be trusted: caching is on, and Redis (if any) is reachable."""
        return self.enabled and self.connected

    @property
    def users_trusted(self) -> bool:
        """Signed-in users may be remembered: with Redis while its listener is connected (it
        carries every change to a user, whether or not answers are cached), without Redis
        only when caching is on (which then means one process; see ``cache_enabled``)."""
        return self.listener.connected if self.listener is not None else self.enabled

    @property
    def user_generation(self) -> int:
        """Read before looking a user up; handed back to ``remember_user``."""
        return self._users.generation

    def key(self, namespaces: Iterable[str], resource: str) -> str:
        gens = ".".join(f"{ns}{self.generations[ns]}" for ns in namespaces)
        return f"{self.prefix}:e{self.epoch}:{gens}:{resource}"

    # fastapi-cache2's Backend interface

    async def get_with_ttl(self, key: str) -> tuple[int, bytes | None]:
        return self.ttl, await self.get(key)

    async def get(self, key: str) -> bytes | None:
        value = self.peek(key)
        if value is not None or not self.usable:
            return value
        if self.redis is not None:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.get(key)
                    pipe.pttl(key)
                    found, left_ms = await pipe.execute()
                value = cast(bytes | None, found)
            except RedisError as exc:
                logger.info("cache read skipped: %s", exc)
                self._suspect()
                return None
            if value is not None:
                # An answer Redis keeps for less than this tier's lifetime (one that
                # stops being true when a hold expires) is not kept here.
                if int(left_ms) >= self._local.ttl * 1000:
                    self._keep(key, value)
                self.hits += 1
                return value
        self.misses += 1
        return None

    async def catch_up(self, *, poll: bool = False) -> None:
        """Let the listener apply what has reached this process before a lookup."""
        if self.listener is not None:
            await self.listener.catch_up(poll=poll)

    def peek(self, key: str) -> bytes | None:
        """This process's tier only (no Redis round trip): for the fast path of cached routes."""
        if not self.usable:
            return None
        value = self._local.get(key)
        if value is not None:
            self.hits += 1
        return value

    async def set(self, key: str, value: bytes, expire: int | None = None) -> None:
        """Keep ``value`` for ``expire`` seconds (the TTL when None); this process's tier,
        whose lifetime is fixed, keeps only what may live that long."""
        if not self.usable:
            return
        if expire is None or expire >= self._local.ttl:
            self._keep(key, value)
        if self.redis is not None:
            try:
                await self.redis.set(key, value, ex=expire or self.ttl)
            except RedisError as exc:
                logger.info("cache write skipped: %s", exc)
                self._suspect()

    async def clear(self, namespace: str | None = None, key: str | None = None) -> int:
        """By exact key, or by moving a namespace to its next generation: never a KEYS scan."""
        if key is not None:
            self._local.pop(key, None)
            if self.redis is not None:
                try:
                    return int(await self.redis.delete(key))
                except RedisError:
                    return 0
            return 1
        if namespace is None:
            await self.invalidate(NAMESPACES)
            return 0
        # FastAPICache.clear passes "<its prefix>:<namespace>".
        name = namespace.rsplit(":", 1)[-1]
        if name not in self.generations:
            raise ValueError(f"no cache namespace {name!r}; there are {', '.join(NAMESPACES)}")
        await self.invalidate([name])
        return 0

    # invalidation

    async def invalidate(self, namespaces: Iterable[str], user_ids: Iterable[int] = ()) -> None:
        """After a commit: later reads here miss at once; other processes hear it via Redis."""
        await self.catch_up(poll=True)  # a PING's answer already here keeps the lease
        namespaces, user_ids = sorted(set(namespaces)), sorted(set(user_ids))
        for ns in namespaces:
            self.generations[ns] += 1
        self._users.forget(user_ids)
        if self.redis is None:
            return
        if not self.connected:
            # Nothing cached is trusted now; reconnecting moves every key to a new epoch.
            self._pending.update(namespaces or ("users",))
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for ns in namespaces:
                    pipe.incr(f"{self.prefix}:gen:{ns}")
                counters = await pipe.execute() if namespaces else []
            gens = dict(zip(namespaces, counters, strict=True))
            for ns, gen in gens.items():
                if int(gen) < self.generations[ns]:
                    # Redis lost the counter (evicted, restored): resynchronise everyone.
                    self._pending.add(ns)
                    self._suspect()
                self.generations[ns] = max(self.generations[ns], int(gen))
            message = {"origin": self._origin, "gens": gens, "users": user_ids}
            await self.redis.publish(self.channel, json.dumps(message))
        except RedisError as exc:
            # Nothing cached is trusted while Redis is away; on return, a new epoch.
            self._pending.update(namespaces)
            logger.warning("cache invalidation could not reach Redis: %s", exc)
            self._suspect()

    def _keep(self, key: str, value: bytes) -> None:
        if len(value) <= self._local.maxsize:  # larger ones are only shared through Redis
            self._local[key] = value

    def _suspect(self) -> None:
        """A Redis command failed: trust nothing until the listener has reconnected."""
        if self.listener is not None:
            self.listener.suspect()

    def _on_message(self, data: bytes) -> None:
        message = json.loads(data)
        if message.get("origin") == self._origin:
            return
        for ns, gen in message.get("gens", {}).items():
            if ns in self.generations:
                self.generations[ns] = max(self.generations[ns], int(gen))
        self._users.forget(int(user_id) for user_id in message.get("users", []))
        if "epoch" in message and int(message["epoch"]) > self.epoch:
            # Another process was cut off and may have written unheard: start afresh.
            self._forget()
            self.epoch = int(message["epoch"])

    async def _on_connect(self, first: bool) -> None:
        """Catch up with Redis before trusting anything again.

        Counters only ever grow: a Redis that lost them (restarted empty) is
        first raised to this process's own values, or another process's next
        INCR could hand out a generation this one has already cached under.
        """
        assert self.redis is not None
        self._forget()
        epoch = self.epoch
        if not first or self._pending:
            # Writes may have happened while we could not hear of them: a new epoch,
            # above both ours and Redis's (which may have gone back).
            epoch = max(epoch + 1, int(await self.redis.incr(self._epoch_key)))
        self.epoch = int(await self._at_least(self._epoch_key, epoch))
        for ns in NAMESPACES:
            gen = await self._at_least(f"{self.prefix}:gen:{ns}", self.generations[ns])
            self.generations[ns] = max(self.generations[ns], int(gen))
        self._pending.clear()
        if not first:
            message = {"origin": self._origin, "epoch": self.epoch, "gens": self.generations}
            await self.redis.publish(self.channel, json.dumps(message))

    @property
    def _epoch_key(self) -> str:
        return f"{self.prefix}:epoch"

    async def _at_least(self, key: str, value: int) -> int:
        """Raise the counter at ``key`` to ``value`` if it is lower; its value afterwards."""
        assert self.redis is not None
        return int(await self.redis.eval(_AT_LEAST, 1, key, value))

    async def forget_everything(self) -> None:
        """After the database was changed behind the services' back (restores, tests)."""
        self._forget()
        await self.invalidate(NAMESPACES)

    def _forget(self) -> None:
        self._local.clear()
        self._users.forget_all()

    # the signed-in user, by id (see inventory.cache.users)

    def cached_user(self, user_id: int) -> User | None:
        return self._users.get(user_id) if self.users_trusted else None

    def watch_user(self, user_id: int) -> AbstractContextManager[UserBell]:
        """A bell rung by every change to the user heard here (a long-lived connection's)."""
        return self._users.watch(user_id)

    def remember_user(self, user_id: int, user: User, seen_generation: int) -> None:
        """Keep ``user``, unless a change to any user was heard since it was read."""
        if self.users_trusted:
            self._users.remember(user_id, user, seen_generation)

    async def close(self) -> None:
        if self._pending and self.redis is not None:
            logger.warning(
                "Redis was unreachable: other processes may serve cached %s for up to %ss",
                ", ".join(sorted(self._pending)),
                self.ttl,
            )
        if self.redis is not None:
            await self.redis.aclose()

"""Cached JSON answers: fastapi-cache2's Backend and Coder contracts, our keys and headers.

fastapi-cache2 0.2.2's ``@cache`` decorator does not fit an authenticated
API served by several processes, so answers go through ``cached`` below,
which keeps its Backend (``CacheTiers``) and Coder (``BytesCoder``) and
leaves out what does not fit:

- its backend is one class attribute per process (``FastAPICache``): two
  apps in one process (tests, or an app mounted in another) would share it;
  here each app's routes pass their own tiers;
- its default key hashes the endpoint's arguments, and a per-request object
  (a session, the user) makes every key new; here the key is the resource and
  the generations of the namespaces it depends on;
- it honours a client's ``Cache-Control: no-cache``/``no-store``, which would
  let any client force database reads; here the request is not consulted;
- it decodes each hit into Python objects and encodes them again; here
  ``BytesCoder`` keeps the body and ETag as sent;
- it sends ``Cache-Control: max-age`` (public-looking) and an ETag from
  ``hash()``, which differs per process; answers here say ``private`` and
  carry the resource's own ETag.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Concatenate, ParamSpec
from weakref import WeakKeyDictionary

from fastapi_cache.coder import Coder
from pydantic import BaseModel
from starlette.responses import Response

from inventory.cache.store import CacheTiers
from inventory.metrics import CACHE_HITS, CACHE_MISSES

P = ParamSpec("P")

CACHE_CONTROL = "private, no-cache"
"""Only the caller may keep it, and must revalidate (If-None-Match) before reuse."""
CACHE_STATUS = "X-Cache"


def resource(name: str, **params: object) -> str:
    """A cache resource name: ``name`` and the parsed query, in a canonical order."""
    query = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if v is not None)
    return f"{name}?{query}"


def json_answer(body: bytes, etag: str | None = None, *, status: str = "MISS") -> Response:
    headers = {"Cache-Control": CACHE_CONTROL, CACHE_STATUS: status}
    if etag:
        headers["ETag"] = etag
    return Response(body, media_type="application/json", headers=headers)


def model_answer(
    model: BaseModel, etag: str | None = None, *, true_until: datetime | None = None
) -> Response:
    """``true_until``: the moment the answer stops being true with no write (a hold expiring);
    ``cached`` keeps it no longer."""
    response = json_answer(model.model_dump_json().encode(), etag)
    if true_until is not None:
        _TRUE_UNTIL[response] = true_until
    return response


_TRUE_UNTIL: WeakKeyDictionary[Response, datetime] = WeakKeyDictionary()


def _lifetime(response: Response, ttl: int) -> int:
    """Whole seconds the answer may be kept (0: not at all)."""
    until = _TRUE_UNTIL.get(response)
    if until is None:
        return ttl
    return max(0, min(ttl, math.floor((until - datetime.now(UTC)).total_seconds())))


class BytesCoder(Coder):
    """Stores ``etag\\nbody``; gives back a ready Response."""

    @classmethod
    def encode(cls, value: Any) -> bytes:
        if not isinstance(value, Response):
            raise TypeError(f"cached functions return a Response, not {type(value).__name__}")
        etag = value.headers.get("etag", "")
        return etag.encode() + b"\n" + bytes(value.body)

    @classmethod
    def decode(cls, value: bytes) -> Response:
        etag, _, body = value.partition(b"\n")
        return json_answer(body, etag.decode() or None, status="HIT")

    @classmethod
    def decode_as_type(cls, value: bytes, *, type_: Any) -> Any:
        return cls.decode(value)


def cached(
    *namespaces: str,
) -> Callable[
    [Callable[P, Awaitable[Response]]],
    Callable[Concatenate[CacheTiers, str, P], Awaitable[Response]],
]:
    """Cache a function returning a JSON ``Response`` whose answer depends on ``namespaces``.

    The cached function is called as ``f(tiers, resource, ...)``: ``resource``
    must name everything the answer depends on (the path and parsed query).
    """

    def decorate(
        render: Callable[P, Awaitable[Response]],
    ) -> Callable[Concatenate[CacheTiers, str, P], Awaitable[Response]]:
        @wraps(render)
        async def answer(
            tiers: CacheTiers, resource: str, /, *args: P.args, **kwargs: P.kwargs
        ) -> Response:
            # Invalidations that reached the process before this request apply first.
            await tiers.catch_up()
            key = tiers.key(namespaces, resource)
            body = await tiers.get(key)
            if body is not None:
                CACHE_HITS.inc()
                return BytesCoder.decode(body)
            CACHE_MISSES.inc()
            response = await render(*args, **kwargs)
            lifetime = _lifetime(response, tiers.ttl)
            if lifetime:
                expire = None if lifetime == tiers.ttl else lifetime
                await tiers.set(key, BytesCoder.encode(response), expire)
            return response

        return answer

    return decorate

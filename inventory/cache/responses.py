"""Cached JSON answers through fastapi-cache2's ``@cache``, on our keys, bytes and headers.

fastapi-cache2 0.2.2's defaults do not fit an authenticated API, so each is
replaced here:

- keys: its default hashes the endpoint's arguments, and a per-request object
  (a session, the user) makes every key new; ``resource_key`` builds the key
  from the resource and the generations of the namespaces it depends on;
- bytes: ``BytesCoder`` stores the response body and ETag as sent, so a hit
  is neither decoded nor re-encoded;
- client headers: its ``Cache-Control: no-cache``/``no-store`` handling would
  let any client force database reads; cached functions are called without
  the request, so those headers never reach it;
- response headers: it would send ``Cache-Control: max-age`` (public-looking)
  and an ETag from ``hash()``, which differs per process; the answers built
  here say ``private`` and carry the resource's own ETag.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from typing import Any, ParamSpec

from fastapi_cache import FastAPICache
from fastapi_cache.coder import Coder
from fastapi_cache.decorator import cache
from pydantic import BaseModel
from starlette.responses import Response

from inventory.cache.store import CacheTiers

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


def model_answer(model: BaseModel, etag: str | None = None) -> Response:
    return json_answer(model.model_dump_json().encode(), etag)


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


def resource_key(
    func: Callable[..., Any],
    namespace: str = "",
    *,
    request: Any = None,
    response: Any = None,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any],
) -> str:
    """``namespace`` lists what the answer depends on ("products,stock"); ``resource`` names it."""
    tiers = FastAPICache.get_backend()
    assert isinstance(tiers, CacheTiers)
    namespaces = namespace.strip(":").split(",")
    return tiers.key(namespaces, str(kwargs["resource"]))


def cached(
    *namespaces: str,
) -> Callable[[Callable[P, Awaitable[Response]]], Callable[P, Awaitable[Response]]]:
    """Cache a function ``(resource: str, …) -> Response`` whose answer depends on ``namespaces``.

    Call it with keyword arguments and never with the request: what the
    answer is must depend only on ``resource`` (the path and normalised query).
    """
    return cache(namespace=",".join(namespaces), coder=BytesCoder, key_builder=resource_key)


@contextmanager
def installed(tiers: CacheTiers) -> Any:
    """Make ``tiers`` fastapi-cache2's backend for as long as this app runs.

    Its settings are process-wide; the previous ones come back afterwards, so
    an app made inside another (in tests) does not leave its cache behind.
    """
    previous = (FastAPICache._backend, FastAPICache._prefix, FastAPICache._init)
    FastAPICache.reset()
    FastAPICache.init(
        tiers, prefix="", expire=tiers.ttl, coder=BytesCoder, key_builder=resource_key
    )
    try:
        yield
    finally:
        FastAPICache.reset()
        backend, prefix, was_init = previous
        if was_init and backend is not None:
            FastAPICache.init(
                backend,
                prefix=prefix or "",
                expire=getattr(backend, "ttl", None),
                coder=BytesCoder,
                key_builder=resource_key,
            )

"""Cached GET answers served from this process's tier before routing.

On a cache hit, routing, FastAPI's dependency solving and its request handling
cost several times more than the hit itself. ``CachedAnswers`` sits inside the
request id, timing, security headers, CORS and compression layers, so a hit
gets all of those; for a GET whose path matches a route whose endpoint is
marked ``@answers_from_cache(...)``, it runs the route's own role requirements
(the same dependency objects FastAPI would call; the caller is signed in once
per request), looks the answer up in the local tier, and only when it is not
there (or the caller is refused) hands the request on to the app, which
answers or refuses as usual and fills the cache.

The entry is named from the *raw* path parameters. Entries are written by the
endpoint from validated values, so only the canonical spelling of a valid
request can find one: the fast path needs no validation of its own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from inventory.cache.responses import BytesCoder
from inventory.cache.routes import CachedAnswer, cached_answer
from inventory.cache.store import CacheTiers
from inventory.deps import RoleRequirement, get_database, get_settings
from inventory.errors import DomainError
from inventory.metrics import CACHE_HITS

logger = logging.getLogger(__name__)

# Dependencies a hit may skip: they only hand out what app.state holds.
_PURE = frozenset({get_database, get_settings})


@dataclass(frozen=True)
class CachedRoute:
    path: re.Pattern[str]
    route: BaseRoute
    answer: CachedAnswer
    requirements: Sequence[RoleRequirement]


def cached_routes(app: FastAPI) -> list[CachedRoute]:
    """The app's marked GET routes; a TypeError for one whose hits would skip a dependency."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        answer = cached_answer(getattr(route, "endpoint", None))
        if answer is None:
            continue
        if not isinstance(route, APIRoute) or context.methods != {"GET"}:
            raise TypeError(f"{context.path}: only a GET route can answer from the cache")
        requirements = []
        for dependency in context.dependant.dependencies:
            if isinstance(dependency.call, RoleRequirement):
                requirements.append(dependency.call)
            elif dependency.call not in _PURE:
                raise TypeError(
                    f"{context.path}: a cache hit would skip the dependency {dependency.call}"
                )
        path, _, _ = compile_path(str(context.path))
        found.append(CachedRoute(path, route, answer, requirements))
    return found


class CachedAnswers:
    """Plain ASGI: a cached answer for a marked GET route, or the app (see the module doc)."""

    def __init__(self, app: ASGIApp, routes: Sequence[CachedRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            for cached in self.routes:
                match = cached.path.match(path)
                if match is not None:
                    response = await self.hit(cached, match.groupdict(), Request(scope, receive))
                    if response is not None:
                        scope["route"] = cached.route  # for the metrics and access line
                        await response(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)

    @staticmethod
    async def hit(cached: CachedRoute, params: dict[str, str], request: Request) -> Response | None:
        tiers: CacheTiers = request.app.state.cache
        if not tiers.usable:
            return None
        try:
            for requirement in cached.requirements:
                await requirement(request)
        except DomainError:
            return None  # refused: the app runs the same requirement and answers in its own words
        except Exception as exc:
            # The app meets the same failure and answers for it; say here why the hit was skipped.
            logger.warning("cached answer skipped: %s: %s", type(exc).__name__, exc)
            return None
        answer = cached.answer
        # An invalidation that reached this process together with (or just before)
        # the request is applied before the lookup.
        await tiers.catch_up()
        body = tiers.peek(tiers.key(answer.namespaces, answer.resource(params)))
        if body is None:
            return None
        CACHE_HITS.inc()
        return answer.finish(request, BytesCoder.decode(body))

"""Marks a GET endpoint whose answer the fast path (``inventory.fast_path``) may serve."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "inventory_cached_answer"


@dataclass(frozen=True)
class CachedAnswer:
    """Where a route's answer is cached, and what the route does with one."""

    namespaces: tuple[str, ...]
    resource: Callable[[Mapping[str, Any]], str]
    """The resource name from the path parameters, as the endpoint names it."""
    finish: Callable[[Request, Response], Response]
    """What the endpoint does with a cached answer (conditional requests, say)."""


def answers_from_cache(answer: CachedAnswer) -> Callable[[F], F]:
    """Mark an endpoint whose answer ``CachedAnswers`` may serve from the cache."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, _MARK, answer)
        return endpoint

    return mark


def cached_answer(endpoint: object) -> CachedAnswer | None:
    """How ``endpoint`` is marked, if it is."""
    answer = getattr(endpoint, _MARK, None)
    return answer if isinstance(answer, CachedAnswer) else None

"""The fast path beside the route it shadows: the same requests get the same answers.

Each request is sent twice to one app, once with ``CachedAnswers`` serving
the product read and once with it handing every request on to the route, and
the two answers are compared: status, body, ETag, Cache-Control, content type
and X-Cache, for hits, conditional reads and refusals.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from inventory.fast_path import CachedAnswers
from inventory.models import Role
from tests.cache.helpers import url, warm
from tests.helpers import API

COMPARED_HEADERS = (
    "etag",
    "cache-control",
    "content-type",
    "x-cache",
    "content-length",
    "www-authenticate",
)


def _fast_path(app: FastAPI) -> CachedAnswers:
    layer: Any = app.middleware_stack
    while not isinstance(layer, CachedAnswers):
        layer = layer.app
    return layer


@pytest.fixture
def hits(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many answers the fast path gave (one entry per hit)."""
    served: list[int] = []
    hit = CachedAnswers.hit

    async def counted(*args: Any) -> Any:
        answer = await hit(*args)
        if answer is not None:
            served.append(answer.status_code)
        return answer

    monkeypatch.setattr(CachedAnswers, "hit", staticmethod(counted))
    return served


async def _side_by_side(
    app: FastAPI, http: httpx.AsyncClient, target: str, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    fast_path = _fast_path(app)
    headers = {**headers, "X-Request-ID": "side-by-side"}  # problem bodies carry it
    with_it = await http.get(target, headers=headers)
    routes, fast_path.routes = fast_path.routes, ()
    try:
        without = await http.get(target, headers=headers)
    finally:
        fast_path.routes = routes
    return with_it, without


def _shape(response: httpx.Response) -> tuple[Any, ...]:
    return (
        response.status_code,
        response.content,
        *(response.headers.get(name) for name in COMPARED_HEADERS),
    )


async def test_hits_and_conditional_reads_match_the_route(app, viewer, shop, hits):
    target = url("/products/{product}", shop)
    tag = (await warm(viewer, target)).headers["etag"]
    hits.clear()
    cases = [{}, {"If-None-Match": tag}, {"If-None-Match": f"W/{tag}"}, {"If-None-Match": "*"}]
    cases += [{"If-None-Match": '"999"'}, {"If-None-Match": f'"999", {tag}'}]
    for headers in cases:
        with_it, without = await _side_by_side(app, viewer, target, headers)
        assert _shape(with_it) == _shape(without), headers
    assert sorted(hits) == [200, 200, 304, 304, 304, 304]


async def test_refusals_match_the_route(app, viewer, anonymous, client, accounts, shop, hits):
    target = url("/products/{product}", shop)
    await warm(viewer, target)
    hits.clear()
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        with_it, without = await _side_by_side(app, anonymous, target, headers)
        assert with_it.status_code == 401, headers
        assert _shape(with_it) == _shape(without), headers
        assert with_it.json() == without.json()
    missing = f"{API}/products/{shop['product'] + 1000}"
    with_it, without = await _side_by_side(app, viewer, missing, {})
    assert with_it.status_code == 404
    assert _shape(with_it) == _shape(without)
    deactivated = await client.patch(
        f"{API}/users/{accounts[Role.viewer].id}", json={"is_active": False}
    )
    assert deactivated.status_code == 200
    with_it, without = await _side_by_side(app, viewer, target, {})
    assert with_it.status_code == 401
    assert _shape(with_it) == _shape(without)
    assert hits == []

"""Hits served before routing (inventory.fast_path) keep every rule of the route.

A product read once sits in the process's tier; the next reads of it are
answered by ``CachedAnswers`` without reaching FastAPI. These tests warm an
entry and then ask for it in every way a client could, checking the answer is
the one the route itself would give.
"""

from __future__ import annotations

import logging
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Request
from starlette.responses import Response

from inventory.cache.routes import CachedAnswer, answers_from_cache
from inventory.deps import require_role
from inventory.fast_path import cached_routes
from inventory.models import Role
from tests.cache.helpers import url, warm
from tests.helpers import API


async def test_a_hit_needs_a_valid_token_like_the_route(viewer, anonymous, shop):
    target = url("/products/{product}", shop)
    await warm(viewer, target)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        refused = await anonymous.get(target, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["content-type"] == "application/problem+json"
        assert "x-cache" not in refused.headers


async def test_a_deactivated_user_is_refused_a_cached_answer(client, viewer, accounts, shop):
    target = url("/products/{product}", shop)
    await warm(viewer, target)
    deactivated = await client.patch(
        f"{API}/users/{accounts[Role.viewer].id}", json={"is_active": False}
    )
    assert deactivated.status_code == 200
    refused = await viewer.get(target)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "The token is invalid or has expired."


async def test_a_hit_answers_conditional_requests_as_the_route_does(viewer, shop):
    target = url("/products/{product}", shop)
    cached = await warm(viewer, target)
    tag = cached.headers["etag"]
    for if_none_match in (tag, f"W/{tag}", f'"999", {tag}', "*"):
        unchanged = await viewer.get(target, headers={"If-None-Match": if_none_match})
        assert unchanged.status_code == 304, if_none_match
        assert unchanged.headers["etag"] == tag
        assert unchanged.content == b""
    changed = await viewer.get(target, headers={"If-None-Match": '"999"'})
    assert changed.status_code == 200
    assert changed.headers["x-cache"] == "HIT"
    assert changed.content == cached.content


async def test_other_spellings_of_the_path_are_left_to_the_route(viewer, shop):
    target = url("/products/{product}", shop)
    cached = await warm(viewer, target)
    padded = await viewer.get(url("/products/0{product}", shop))
    assert padded.status_code == 200
    assert padded.content == cached.content
    for bad in ("abc", "0", "-1", "99999999999999"):
        refused = await viewer.get(f"{API}/products/{bad}")
        assert refused.status_code == 422, bad
    missing = await viewer.get(f"{API}/products/{shop['product'] + 1000}")
    assert missing.status_code == 404


async def test_a_hit_is_logged_and_counted_under_its_route(viewer, shop, accounts, caplog):
    target = url("/products/{product}", shop)
    await warm(viewer, target)
    with caplog.at_level(logging.INFO, logger="inventory.access"):
        hit = await viewer.get(target, headers={"X-Request-ID": "fast-path-1"})
    assert hit.headers["x-cache"] == "HIT"
    assert hit.headers["x-request-id"] == "fast-path-1"
    assert hit.headers["x-content-type-options"] == "nosniff"
    assert "x-process-time" in hit.headers
    (line,) = [
        r
        for r in caplog.records
        if r.name == "inventory.access" and getattr(r, "request_id", None) == "fast-path-1"
    ]
    assert line.route == "/api/v1/products/{product_id}"
    assert line.user_id == accounts[Role.viewer].id
    metrics = (await viewer.get("/metrics")).text
    assert 'route="/api/v1/products/{product_id}",status="200"' in metrics


def _marked() -> CachedAnswer:
    return CachedAnswer(("products",), lambda params: "x", lambda request, answer: answer)


async def _side_effect(request: Request) -> None:
    return None


def test_a_route_whose_hits_would_skip_a_dependency_is_refused_when_the_app_is_built():
    app = FastAPI()

    @app.get("/things/{thing}", dependencies=[require_role(Role.viewer)])
    @answers_from_cache(_marked())
    async def thing(thing: int, seen: Annotated[None, Depends(_side_effect)]) -> Response:
        return Response()

    with pytest.raises(TypeError, match="would skip the dependency"):
        cached_routes(app)


def test_only_a_get_route_may_answer_from_the_cache():
    app = FastAPI()

    @app.post("/things/{thing}")
    @answers_from_cache(_marked())
    async def thing(thing: int) -> Response:
        return Response()

    with pytest.raises(TypeError, match="only a GET route"):
        cached_routes(app)


def test_the_product_read_is_the_one_route_served_before_routing(app):
    assert [str(c.path.pattern) for c in cached_routes(app)] == [
        "^/api/v1/products/(?P<product_id>[^/]+)$"
    ]

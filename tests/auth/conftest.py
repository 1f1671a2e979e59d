"""Fixtures of the sign-in tests: apps of their own (as workers) and clients to them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from inventory.config import Settings
from inventory.main import create_app


@pytest.fixture
def make_app(settings: Settings) -> Callable[..., FastAPI]:
    """A fresh app (a "worker") with counts of its own; apps made by one test share them."""
    prefix = f"{settings.redis_key_prefix}:{uuid.uuid4().hex[:8]}"

    def make(**overrides: Any) -> FastAPI:
        return create_app(settings.model_copy(update={"redis_key_prefix": prefix, **overrides}))

    return make


@pytest.fixture
async def connect(accounts) -> AsyncIterator[Callable[..., Any]]:
    """Open a client to an app, as a browser would over HTTPS (so it keeps and sends back
    the Secure device cookie; ``scheme="http"`` keeps none), from a chosen address; or from
    a proxy in front of the app, with uvicorn's own X-Forwarded-For handling trusting
    ``trusted``."""
    started: dict[int, Any] = {}
    clients: list[httpx.AsyncClient] = []

    async def open_client(
        app: FastAPI,
        address: str = "203.0.113.7",
        *,
        trusted: str | None = None,
        scheme: str = "https",
    ) -> httpx.AsyncClient:
        if id(app) not in started:  # one lifespan per app, however many clients
            started[id(app)] = app.router.lifespan_context(app)
            await started[id(app)].__aenter__()
        served: Any = app if trusted is None else ProxyHeadersMiddleware(cast(Any, app), trusted)
        transport = httpx.ASGITransport(app=served, client=(address, 4321))
        clients.append(httpx.AsyncClient(transport=transport, base_url=f"{scheme}://testserver"))
        return clients[-1]

    yield open_client
    for http in clients:
        await http.aclose()
    for lifespan in started.values():
        await lifespan.__aexit__(None, None, None)

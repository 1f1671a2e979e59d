"""The application factory: settings, lifespan, middleware, error handlers and routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field, SecretStr, ValidationError

import inventory
from graphql_schema.schema import graphql_router
from inventory import metrics
from inventory.auth.router import router as auth_router
from inventory.auth.throttle import LoginThrottle, WriteThrottle
from inventory.cache.invalidation import invalidator
from inventory.cache.routes import CachedAnswers, cached_routes
from inventory.cache.store import CacheTiers
from inventory.catalogue.router import category_router, supplier_router, warehouse_router
from inventory.changefeed import ChangeFeed
from inventory.config import Environment, Settings, load_settings
from inventory.csvio.router import router as csv_router
from inventory.db import Database, open_database
from inventory.deps import RoleRequirement, bearer_token, signed_in
from inventory.docs import install_docs
from inventory.errors import Conflict, install_error_handlers, problem_responses
from inventory.health import router as health_router
from inventory.jobs.dispatch import job_runner
from inventory.logs import configure_logging
from inventory.middleware import (
    AllowedHostsMiddleware,
    BodyLimit,
    ObservedRequests,
    RequestIdMiddleware,
    SecurityHeaders,
)
from inventory.products.router import router as product_router
from inventory.shutdown import ShutdownSignal
from inventory.stock.router import router as stock_router
from inventory.stock.sse import router as stock_stream_router
from inventory.stock.websocket import router as stock_socket_router
from inventory.users import service as users
from inventory.users.router import router as user_router

API_PREFIX = "/api/v1"
REPOSITORY_URL = "https://github.com/inventory-service/inventory"
DESCRIPTION = """
An inventory backend: a catalogue (categories, suppliers, warehouses, products),
a stock ledger (movements, transfers, levels), users with roles, bulk CSV, and a
GraphQL endpoint at `/graphql` over the same rules.

**Authentication**: `POST /api/v1/auth/token` (OAuth2 password form) gives a
bearer token; use the Authorize button. Roles are hierarchical: viewer < clerk <
manager < admin.

**Errors** are `application/problem+json` (RFC 9457) with a `request_id`;
422 adds `errors: [{loc, msg, type}]`. Writes are rate limited per user (429
with `Retry-After`). Lists are keyset-paginated: `limit` (1 to 200) and the
opaque `cursor` from `next_cursor`.
"""
TAGS = [
    {"name": "auth", "description": "Sign in: exchange email and password for a bearer token."},
    {"name": "users", "description": "Accounts and roles (admin)."},
    {"name": "products", "description": "The catalogue's products; ETag and If-Match."},
    {"name": "categories", "description": "Product categories."},
    {"name": "suppliers", "description": "Suppliers of products."},
    {"name": "warehouses", "description": "Places stock is kept."},
    {
        "name": "stock",
        "description": "The ledger: movements, transfers, levels and live change feeds.",
    },
    {"name": "csv", "description": "Bulk import (as jobs) and streamed export."},
    {"name": "service", "description": "Probes: liveness and readiness."},
    {"name": "graphql", "description": "The same service over GraphQL; tokens as for REST."},
]

logger = logging.getLogger(__name__)


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str | None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="For 422: each invalid field as {loc, msg, type}"
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    database = open_database(settings)
    app.state.db = database
    app.state.login_throttle = LoginThrottle(settings.redis_url, settings.redis_key_prefix)
    app.state.write_throttle = WriteThrottle(
        settings.redis_url, settings.redis_key_prefix, settings.write_rate_limit
    )
    metrics.watch_pool(database.engine)
    app.state.change_feed = feed = ChangeFeed(settings.redis_url, settings.redis_key_prefix)
    app.state.cache = tiers = CacheTiers(settings)
    # In-process (and running maintenance in the background), or sent to Celery workers.
    app.state.jobs = runner = job_runner(settings, database)
    # Invalidate first: the response of a write waits for it, so a read after it is fresh.
    database.after_commit.extend(
        (invalidator(tiers), feed.publish, runner.announce, metrics.count_committed)
    )
    await tiers.start()
    await runner.start()
    # Live streams end at once on SIGTERM instead of holding the shutdown open.
    app.state.shutdown = shutdown = ShutdownSignal()
    shutdown.install()
    try:
        if settings.admin_email and settings.admin_password:
            await bootstrap_admin(database, settings.admin_email, settings.admin_password)
        yield
    finally:
        shutdown.uninstall()
        await runner.close()
        await app.state.login_throttle.close()
        await app.state.write_throttle.close()
        await feed.close()
        await tiers.close()
        await database.engine.dispose()


async def bootstrap_admin(database: Database, email: str, password: SecretStr) -> None:
    """Create the first admin from settings; several workers starting at once create one."""
    try:
        async with database.unit_of_work(write=True) as uow:
            created = await users.ensure_admin(uow.session, email, password.get_secret_value())
    except Conflict:
        return  # another worker created it first
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise RuntimeError(f"INVENTORY_ADMIN_EMAIL/INVENTORY_ADMIN_PASSWORD: {problems}") from None
    if created:
        logger.info("created admin %s from INVENTORY_ADMIN_EMAIL", created.email)


API_ROUTERS = (
    # Matched in this order: the hottest reads first.
    product_router,
    stock_router,
    category_router,
    supplier_router,
    warehouse_router,
    csv_router,
    user_router,
    auth_router,
    stock_stream_router,
    stock_socket_router,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings)
    if settings.env is Environment.production and "*" in settings.allowed_hosts:
        logger.warning("INVENTORY_ALLOWED_HOSTS is '*': any Host header is accepted")
    app = FastAPI(
        title="Inventory service",
        version=inventory.__version__,
        summary="Catalogue, warehouses, a stock ledger and users, over REST and GraphQL.",
        description=DESCRIPTION,
        contact={"name": "Inventory service maintainers", "url": REPOSITORY_URL},
        license_info={"name": "MIT", "identifier": "MIT"},
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,  # install_docs serves both pages with local assets
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        # Metrics are Prometheus's (inventory.metrics); FastAPI's OpenTelemetry hooks
        # would otherwise look for a configured provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_error_handlers(app)
    # Each directly under the app, not in one /api/v1 router: every level of nesting
    # is walked again on every request.
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    # Added innermost first: the request id wraps everything, so even a
    # refused Host or a CORS preflight carries one.
    app.add_middleware(
        BodyLimit,
        max_body=settings.max_body_bytes,
        max_upload=settings.max_upload_bytes,
        upload_paths=frozenset({f"{API_PREFIX}/imports/products"}),
    )
    app.add_middleware(CachedAnswers, routes=cached_routes(app))
    if "*" not in settings.allowed_hosts:
        app.add_middleware(AllowedHostsMiddleware, allowed_hosts=settings.allowed_hosts)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=["ETag", "Location", "X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ObservedRequests)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health_router)
    app.include_router(metrics.router)
    if settings.docs_enabled:
        install_docs(app)
    # GET serves GraphiQL; every query and mutation checks the token itself.
    app.include_router(graphql_router(settings), prefix="/graphql")
    _complete_openapi(app)
    return app


def _complete_openapi(app: FastAPI) -> None:
    """Add what FastAPI cannot know: the Problem schema the error responses refer to,
    the errors every signed-in or writing operation may meet, and GraphQL's two routes."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            )
            _document_common_errors(app, schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
GRAPHQL_OPERATIONS = {
    "get": "GraphiQL in a browser; a query (not a mutation) as ?query=…",
    "post": "A GraphQL query or mutation (application/json); see /graphql in a browser",
}


def _document_common_errors(app: FastAPI, schema: dict[str, Any]) -> None:
    # Signing in is one plain dependency (see deps.signed_in), so FastAPI does not
    # see the bearer scheme: declare it, and name it on every signed-in operation.
    scheme = bearer_token.scheme_name
    schema["components"].setdefault("securitySchemes", {})[scheme] = bearer_token.model.model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        signed_in = _needs_sign_in(context.dependant)
        for method in context.methods or ():
            operation = schema["paths"].get(str(context.path), {}).get(method.lower())
            if operation is None:
                continue
            extra: list[int] = []
            if signed_in:
                operation.setdefault("security", [{scheme: []}])
                extra += [401, 403]
                if method in WRITE_METHODS:
                    extra.append(429)
            if method in WRITE_METHODS:
                extra.append(413)
            for status, response in problem_responses(*extra).items():
                operation["responses"].setdefault(str(status), response)
    for method, summary in GRAPHQL_OPERATIONS.items():
        if operation := schema["paths"].get("/graphql", {}).get(method):
            operation.update(summary=summary, tags=["graphql"])


def _needs_sign_in(dependant: Dependant) -> bool:
    return any(
        dep.call is signed_in or isinstance(dep.call, RoleRequirement) or _needs_sign_in(dep)
        for dep in dependant.dependencies
    )

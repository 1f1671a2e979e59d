"""The application factory: settings, lifespan, middleware, error handlers and routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from pydantic import SecretStr, ValidationError

import inventory
from graphql_schema.schema import graphql_router
from inventory import metrics
from inventory.auth.router import router as auth_router
from inventory.auth.throttle import LoginThrottle, WriteThrottle
from inventory.cache.invalidation import invalidator
from inventory.cache.store import CacheTiers
from inventory.catalogue.router import category_router, supplier_router, warehouse_router
from inventory.changefeed import ChangeFeed
from inventory.config import Environment, Settings, load_settings
from inventory.csvio.router import router as csv_router
from inventory.db import Database, open_database
from inventory.docs import install_docs
from inventory.errors import Conflict
from inventory.fast_path import CachedAnswers, cached_routes
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
from inventory.openapi import complete_openapi
from inventory.problems import install_error_handlers
from inventory.products.router import router as product_router
from inventory.pubsub import PubSubListener
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
    # One pub/sub listener per process, for the cache's invalidations and the change feed.
    listener = PubSubListener(settings.redis_url) if settings.redis_url else None
    app.state.change_feed = feed = ChangeFeed(
        settings.redis_url, settings.redis_key_prefix, listener
    )
    app.state.cache = tiers = CacheTiers(settings, listener)
    # In-process (and running maintenance in the background), or sent to Celery workers.
    app.state.jobs = runner = job_runner(settings, database)
    # Invalidate first: the response of a write waits for it, so a read after it is fresh.
    database.after_commit.extend(
        (invalidator(tiers), feed.publish, runner.announce, metrics.count_committed)
    )
    if listener is not None:
        listener.start()
        await listener.wait_connected(within=1.0)
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
        if listener is not None:
            await listener.close()
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
    complete_openapi(app, API_PREFIX)
    return app

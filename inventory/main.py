"""The application factory: the OpenAPI metadata, routers, middleware and mounts.

What the process opens and closes around serving is ``inventory.lifespan``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware

import inventory
from graphql_schema.schema import graphql_router
from inventory import metrics
from inventory.auth.router import router as auth_router
from inventory.catalogue.router import category_router, supplier_router, warehouse_router
from inventory.config import Environment, Settings, load_settings
from inventory.counts.router import router as count_router
from inventory.csvio.router import router as csv_router
from inventory.docs import install_docs
from inventory.fast_path import CachedAnswers, cached_routes
from inventory.health import router as health_router
from inventory.lifespan import lifespan
from inventory.logs import configure_logging
from inventory.middleware import (
    AllowedHostsMiddleware,
    BodyLimit,
    HashGateScope,
    ObservedRequests,
    RequestIdMiddleware,
    SecurityHeaders,
)
from inventory.openapi import complete_openapi
from inventory.problems import install_error_handlers
from inventory.products.router import router as product_router
from inventory.purchase_orders.router import router as purchase_orders_router
from inventory.reservations.router import router as reservations_router
from inventory.sales_orders.router import router as sales_orders_router
from inventory.shedding import LoadShedder
from inventory.stock.router import router as stock_router
from inventory.stock.sse import router as stock_stream_router
from inventory.stock.websocket import router as stock_socket_router
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
    {
        "name": "counts",
        "description": "Stocktakes: count the shelves, finish into adjustments.",
    },
    {
        "name": "reservations",
        "description": "Stock promised for a while: hold all lines or none, confirm, release.",
    },
    {
        "name": "sales orders",
        "description": "Stock sold: confirm to allocate (backorder the rest), ship, cancel.",
    },
    {"name": "csv", "description": "Bulk import (as jobs) and streamed export."},
    {"name": "service", "description": "Probes: liveness and readiness."},
    {"name": "graphql", "description": "The same service over GraphQL; tokens as for REST."},
]

logger = logging.getLogger(__name__)


NEVER_SHED = frozenset({"/health", "/ready", "/metrics"})
"""Probes and metrics answer however busy the process is."""

API_ROUTERS = (
    # Matched in this order: the hottest reads first.
    product_router,
    stock_router,
    reservations_router,
    sales_orders_router,
    category_router,
    supplier_router,
    warehouse_router,
    count_router,
    purchase_orders_router,
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
    app.add_middleware(HashGateScope, state=app.state)  # inside the cached answers: none hash
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
    # Just inside the request id: a refused request costs next to nothing, yet its
    # answer carries an id. Shed answers are counted, not access-logged.
    app.add_middleware(
        LoadShedder,
        max_in_flight=settings.max_in_flight,
        max_queued=settings.max_queued,
        wait_seconds=settings.queue_wait_seconds,
        exempt=NEVER_SHED,
    )
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health_router)
    app.include_router(metrics.router)
    if settings.docs_enabled:
        install_docs(app)
    # GET serves GraphiQL; every query and mutation checks the token itself.
    app.include_router(graphql_router(settings), prefix="/graphql")
    complete_openapi(app, API_PREFIX)
    return app

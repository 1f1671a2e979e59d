"""The application factory: settings, lifespan, middleware, error handlers and routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel, Field, SecretStr, ValidationError

import inventory
from graphql_schema.schema import graphql_router
from inventory.auth.router import router as auth_router
from inventory.auth.throttle import LoginThrottle
from inventory.cache.invalidation import invalidator
from inventory.cache.store import CacheTiers
from inventory.catalogue.router import category_router, supplier_router, warehouse_router
from inventory.changefeed import ChangeFeed
from inventory.config import Settings, load_settings
from inventory.csvio.router import router as csv_router
from inventory.db import Database, open_database
from inventory.docs import install_docs
from inventory.errors import Conflict, install_error_handlers
from inventory.health import router as health_router
from inventory.jobs.dispatch import job_runner
from inventory.middleware import AllowedHostsMiddleware, RequestIdMiddleware
from inventory.products.router import router as product_router
from inventory.shutdown import ShutdownSignal
from inventory.stock.live import socket_router as stock_socket_router
from inventory.stock.live import stream_router as stock_stream_router
from inventory.stock.router import router as stock_router
from inventory.users import service as users
from inventory.users.router import router as user_router

API_PREFIX = "/api/v1"

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
    app.state.change_feed = feed = ChangeFeed(settings.redis_url, settings.redis_key_prefix)
    app.state.cache = tiers = CacheTiers(settings)
    # In-process (and running maintenance in the background), or sent to Celery workers.
    app.state.jobs = runner = job_runner(settings, database)
    # Invalidate first: the response of a write waits for it, so a read after it is fresh.
    database.after_commit.extend((invalidator(tiers), feed.publish, runner.announce))
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


def api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    # Routes are matched in this order: the hottest reads first.
    for domain_router in (
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
    ):
        router.include_router(domain_router)
    return router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = FastAPI(
        title="Inventory service",
        version=inventory.__version__,
        description="Catalogue, warehouses and a stock ledger. Errors are problem+json.",
        lifespan=lifespan,
        docs_url=None,  # install_docs serves both pages with local assets
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    # Added innermost first: the request id wraps everything, so even a
    # refused Host or a CORS preflight carries one.
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
    app.add_middleware(RequestIdMiddleware)
    app.include_router(api_router())
    app.include_router(health_router)
    install_docs(app)
    # GET serves GraphiQL; every query and mutation checks the token itself.
    app.include_router(graphql_router(settings), prefix="/graphql")
    _document_problem_schema(app)
    return app


def _document_problem_schema(app: FastAPI) -> None:
    """Add the Problem schema the routes' error responses refer to."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

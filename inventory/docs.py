"""Swagger UI at /docs and ReDoc at /redoc, their scripts and styles served by the app itself."""

from __future__ import annotations

import os

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response
from starlette.types import Scope

from inventory.vendor import VENDOR_DIR, VENDOR_URL, asset_url

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_URL = "/redoc"
FAVICON = ("swagger-ui-dist", "favicon-32x32.png")
REDOC_IMAGES_POLICY = "img-src 'self' data: blob:"


class VersionedStaticFiles(StaticFiles):
    """Files under a ``<package>-<version>`` path never change, so browsers keep them a year."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def root_path(request: Request) -> str:
    """The prefix the app is served under (uvicorn ``--root-path``), as FastAPI's pages use it."""
    prefix: str = request.scope.get("root_path", "")
    return prefix.rstrip("/")


def docs_router(app: FastAPI) -> APIRouter:
    """The pages FastAPI would serve with ``docs_url`` and ``redoc_url``, minus the CDN."""
    router = APIRouter(include_in_schema=False)
    openapi_url = app.openapi_url or "/openapi.json"

    @router.get(DOCS_URL)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = root_path(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=asset_url("swagger-ui-dist", "swagger-ui-bundle.js", root),
            swagger_css_url=asset_url("swagger-ui-dist", "swagger-ui.css", root),
            swagger_favicon_url=asset_url(*FAVICON, root),
            # The Authorize button's password flow posts to the token URL the
            # OpenAPI document names; this page only receives other flows' redirects.
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @router.get(OAUTH2_REDIRECT_URL)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get(REDOC_URL)
    async def redoc(request: Request) -> HTMLResponse:
        root = root_path(request)
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset_url("redoc", "bundles/redoc.standalone.js", root),
            redoc_favicon_url=asset_url(*FAVICON, root),
            with_google_fonts=False,
        )
        # ReDoc's bundle always adds its vendor's logo from their CDN; images
        # from anywhere but here are refused, so the page never reaches out.
        page.headers["Content-Security-Policy"] = REDOC_IMAGES_POLICY
        return page

    return router


def install_docs(app: FastAPI) -> None:
    """Serve the shipped assets at /static/vendor and the two documentation pages."""
    app.mount(VENDOR_URL, VersionedStaticFiles(directory=VENDOR_DIR), name="vendor")
    app.include_router(docs_router(app))

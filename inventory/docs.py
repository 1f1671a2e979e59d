"""Swagger UI at /docs and ReDoc at /redoc, their scripts and styles served by the app itself."""

from __future__ import annotations

import base64
import hashlib
import os
import re

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
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL)


def with_page_policy(page: HTMLResponse) -> HTMLResponse:
    """A Content-Security-Policy for a docs page: scripts only from here or inline ones
    this page carries (by hash), nothing fetched from elsewhere. Styles may be inline:
    ReDoc and GraphiQL add theirs at run time. Images only from here, so ReDoc's
    bundle cannot fetch its vendor's logo from a CDN."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in INLINE_SCRIPT.findall(bytes(page.body))
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )
    return page


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
        page = get_swagger_ui_html(
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
        return with_page_policy(page)

    @router.get(OAUTH2_REDIRECT_URL)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return with_page_policy(get_swagger_ui_oauth2_redirect_html())

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
        return with_page_policy(page)

    return router


def install_docs(app: FastAPI) -> None:
    """Serve the shipped assets at /static/vendor and the two documentation pages."""
    app.mount(VENDOR_URL, VersionedStaticFiles(directory=VENDOR_DIR), name="vendor")
    app.include_router(docs_router(app))

"""GraphiQL with no internet: Strawberry's own page, its CDN URLs swapped for our static files."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from strawberry.fastapi import GraphQLRouter
from strawberry.http.ides import get_graphql_ide_html

from inventory.docs import root_path, with_page_policy
from inventory.vendor import asset_url, packages

CDN = "https://unpkg.com"
GRAPHIQL_ASSETS = (
    # Every file Strawberry's GraphiQL page loads: (npm package, path in the package).
    # The versions are the manifest's, so the page must name exactly the releases we ship.
    ("react", "umd/react.production.min.js"),
    ("react-dom", "umd/react-dom.production.min.js"),
    ("js-cookie", "dist/js.cookie.min.js"),
    ("graphiql", "graphiql.min.css"),
    ("graphiql", "graphiql.min.js"),
    ("@graphiql/plugin-explorer", "dist/style.css"),
    ("@graphiql/plugin-explorer", "dist/index.umd.js"),
)
_REMOTE_ASSET = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//[^"'\s>]*""", re.IGNORECASE)


def local_graphiql_page(template: str, root: str = "") -> str:
    """``template`` with each CDN URL replaced; an error if one is missing or any is left.

    The page's ``integrity`` attributes stay: the shipped files are the released bytes.
    """
    page = template
    for package, file in GRAPHIQL_ASSETS:
        cdn_url = f"{CDN}/{packages()[package].spec}/{file}"
        if cdn_url not in page:
            raise RuntimeError(
                f"Strawberry's GraphiQL page no longer loads {cdn_url}: ship the release it "
                "names now (inventory/static/README.md) and update GRAPHIQL_ASSETS"
            )
        page = page.replace(cdn_url, asset_url(package, file, root))
    if remote := _REMOTE_ASSET.findall(page):
        raise RuntimeError(f"Strawberry's GraphiQL page loads more than we ship: {remote}")
    return page


@lru_cache(maxsize=8)
def graphiql_page(root: str = "") -> str:
    return local_graphiql_page(get_graphql_ide_html("graphiql"), root)


graphiql_page()  # at import: a Strawberry upgrade that changes the page stops start-up


class OfflineGraphQLRouter(GraphQLRouter[object, None]):
    """Strawberry's FastAPI router, serving GraphiQL from /static/vendor instead of a CDN."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.graphql_ide not in ("graphiql", None):
            raise ValueError(f"only GraphiQL is served offline, not {self.graphql_ide}")

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return with_page_policy(HTMLResponse(graphiql_page(root_path(request))))

"""GraphiQL with no internet: Strawberry's own page, its CDN URLs swapped for our static files.

The router also says in the OpenAPI document what its two routes answer: GET
serves GraphiQL's HTML to a browser or a query's JSON; either may refuse a
request it cannot read in plain text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from fastapi.routing import APIRoute
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


OPERATIONS = {
    "GET": "GraphiQL in a browser; a query (not a mutation) as ?query=…",
    "POST": "A GraphQL query or mutation (application/json); see /graphql in a browser",
}
_RESULT = {"application/json": {"schema": {"type": "object"}}}
_REFUSAL = {
    # Strawberry's own refusals (no query, a body that is not JSON, an unsupported
    # content type, a mutation over GET) are plain text.
    "description": "The request is not a GraphQL request this route can read",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
ANSWERS: dict[str, dict[int | str, dict[str, Any]]] = {
    "GET": {
        200: {
            "description": "GraphiQL for a browser (text/html), or the result of ?query=",
            "content": {"text/html": {"schema": {"type": "string"}}, **_RESULT},
        },
        400: _REFUSAL,
        404: {
            "description": "Neither GraphiQL nor a query: nothing to answer",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
    },
    "POST": {200: {"description": "The result", "content": _RESULT}, 400: _REFUSAL},
}
"""What each route answers, beside the errors every operation may meet."""


class OfflineGraphQLRouter(GraphQLRouter[object, None]):
    """Strawberry's FastAPI router, serving GraphiQL from /static/vendor instead of a CDN."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.graphql_ide not in ("graphiql", None):
            raise ValueError(f"only GraphiQL is served offline, not {self.graphql_ide}")
        for route in self.routes:
            if isinstance(route, APIRoute) and route.methods:
                method = next(iter(route.methods))
                route.summary = OPERATIONS[method]
                route.tags = ["graphql"]
                route.responses = {**route.responses, **ANSWERS[method]}

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return with_page_policy(HTMLResponse(graphiql_page(root_path(request))))

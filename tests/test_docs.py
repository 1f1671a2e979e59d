"""The docs pages load every script and style from the app itself, and the OpenAPI
document says what every route answers, errors included."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from strawberry.http.ides import get_graphql_ide_html

from graphql_schema.ide import graphiql_page, local_graphiql_page
from inventory.vendor import STATIC_DIR, VENDOR_DIR, asset_url, mismatches, packages
from tests.helpers import API, assert_problem

# The pages do not touch the database: the HTTP tests run on one deployment only.
one_backend = pytest.mark.backend("sqlite")

PAGES = ["/docs", "/redoc", "/graphql"]
CONTENT_TYPES = {
    ".js": {"text/javascript", "application/javascript"},
    ".css": {"text/css"},
    ".png": {"image/png"},
}


class AssetLinks(HTMLParser):
    """Collects what a page makes the browser load: script src and link href, with integrity."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src") if tag == "script" else attributes.get("href")
        if tag in {"script", "link"} and url:
            self.assets.append({"url": url, "integrity": attributes.get("integrity")})


async def page_assets(
    http: httpx.AsyncClient, page: str
) -> tuple[str, list[dict[str, str | None]]]:
    response = await http.get(page, headers={"Accept": "text/html"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    parser = AssetLinks()
    parser.feed(response.text)
    return response.text, parser.assets


@one_backend
@pytest.mark.parametrize("page", PAGES)
async def test_every_asset_is_served_locally(anonymous, page):
    html, assets = await page_assets(anonymous, page)
    lowered = html.lower()
    assert "https://" not in lowered
    assert "//unpkg" not in lowered
    assert "cdn" not in lowered
    local = [asset["url"] for asset in assets if not str(asset["url"]).startswith("data:")]
    assert len(local) >= {"/docs": 3, "/redoc": 2, "/graphql": 7}[page]
    for url in local:
        assert url is not None
        assert url.startswith("/static/vendor/"), url
        response = await anonymous.get(url)
        assert response.status_code == 200, url
        suffix = url[url.rfind(".") :]
        assert response.headers["content-type"].split(";")[0] in CONTENT_TYPES[suffix], url
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


@one_backend
async def test_graphiql_integrity_attributes_match_the_served_files(anonymous):
    _html, assets = await page_assets(anonymous, "/graphql")
    checked = 0
    for asset in assets:
        if asset["integrity"] is None:
            continue
        algorithm, expected = str(asset["integrity"]).split("-", 1)
        assert algorithm == "sha384"
        body = (await anonymous.get(str(asset["url"]))).content
        assert base64.b64encode(hashlib.sha384(body).digest()).decode() == expected, asset
        checked += 1
    assert checked == 7


@one_backend
async def test_graphiql_page_needs_no_token_but_queries_do(anonymous):
    page = await anonymous.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text
    query = await anonymous.post("/graphql", json={"query": "{ me { email } }"})
    assert query.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@one_backend
async def test_swagger_password_flow_uses_the_token_url(anonymous):
    schemes = (await anonymous.get("/openapi.json")).json()["components"]["securitySchemes"]
    flows = [scheme["flows"] for scheme in schemes.values() if scheme["type"] == "oauth2"]
    assert flows == [{"password": {"scopes": {}, "tokenUrl": f"{API}/auth/token"}}]
    docs = (await anonymous.get("/docs")).text
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in docs
    redirect = await anonymous.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "oauth2" in redirect.text.lower()


@one_backend
@pytest.mark.parametrize("page", ["/docs", "/docs/oauth2-redirect", "/redoc", "/graphql"])
async def test_docs_pages_run_only_their_own_scripts(anonymous, page):
    """Scripts from this service or inline ones the page carries (by hash); images
    only from here (ReDoc's bundle adds its vendor's logo from a CDN otherwise).
    The browser test shows the pages still work under it."""
    response = await anonymous.get(page, headers={"Accept": "text/html"})
    policy = response.headers["content-security-policy"].split("; ")
    directives = {name: value for name, _, value in (part.partition(" ") for part in policy)}
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", response.text, re.S)
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    }
    assert set(directives["script-src"].split()) == {"'self'", *hashes}
    assert directives["img-src"] == "'self' data: blob:"
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


@one_backend
async def test_api_answers_carry_a_policy_that_loads_nothing(client):
    response = await client.get(f"{API}/products")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert float(response.headers["x-process-time"]) >= 0


@one_backend
async def test_docs_pages_are_not_in_the_openapi_document(anonymous):
    paths = (await anonymous.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc", "/static"))]


@one_backend
async def test_unknown_asset_is_404(anonymous):
    assert (await anonymous.get("/static/vendor/nothing-1.0.0/x.js")).status_code == 404
    assert (await anonymous.get("/static/vendor/../manifest.json")).status_code == 404


@one_backend
async def test_pages_honour_the_root_path(app, accounts):
    transport = httpx.ASGITransport(app=app, root_path="/inventory")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for page in PAGES:
            _html, assets = await page_assets(http, f"/inventory{page}")
            local = [str(a["url"]) for a in assets if not str(a["url"]).startswith("data:")]
            assert local, page
            assert all(url.startswith("/inventory/static/vendor/") for url in local), local


def test_shipped_files_match_the_manifest():
    assert mismatches() == []
    listed = {
        VENDOR_DIR / package.directory / file
        for package in packages().values()
        for file in package.files
    }
    shipped = {path for path in VENDOR_DIR.rglob("*") if path.is_file()}
    assert shipped == listed
    for package in packages().values():
        assert "LICENSE" in package.files, package.spec


def test_static_readme_names_the_shipped_versions():
    readme = (STATIC_DIR / "README.md").read_text()
    for package in packages().values():
        assert f"| {package.version} |" in readme, package.spec


def test_graphiql_page_is_strawberrys_with_local_urls():
    page = graphiql_page()
    assert page.count("/static/vendor/") == 7
    assert asset_url("graphiql", "graphiql.min.js") in page
    assert len(page.splitlines()) == len(get_graphql_ide_html("graphiql").splitlines())


def test_graphiql_refuses_a_template_that_names_other_releases():
    template = get_graphql_ide_html("graphiql").replace(
        "graphiql@3.8.3/graphiql.min.js", "graphiql@9.9.9/graphiql.min.js"
    )
    with pytest.raises(RuntimeError, match=r"no longer loads https://unpkg.com/graphiql@3\.8\.3"):
        local_graphiql_page(template)


def test_graphiql_refuses_a_template_that_loads_anything_else():
    template = get_graphql_ide_html("graphiql").replace(
        "</head>", '<script src="https://cdn.example/extra.js"></script></head>'
    )
    with pytest.raises(RuntimeError, match="loads more than we ship"):
        local_graphiql_page(template)


@pytest.fixture
async def openapi_document(anonymous) -> dict[str, Any]:
    document: dict[str, Any] = (await anonymous.get("/openapi.json")).json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


@one_backend
async def test_every_error_of_the_api_is_documented_as_problem_json(openapi_document):
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, method, operation in operations(openapi_document):
        responses = operation["responses"]
        assert "500" in responses, (method, path)
        if path.startswith(API):
            assert "503" in responses, (method, path)
        if operation.get("security"):
            assert {"401", "403"} <= responses.keys(), (method, path)
        if method in {"post", "patch", "delete"}:
            assert "413" in responses, (method, path)
        for status, response in responses.items():
            if int(status) >= 400 and path != "/graphql":
                assert response["content"] == problem, (method, path, status)
    assert "HTTPValidationError" not in openapi_document["components"]["schemas"]


@one_backend
async def test_path_and_query_errors_are_documented_as_they_are_answered(openapi_document, client):
    documented = openapi_document["paths"][f"{API}/categories/{{entry_id}}"]["get"]["responses"]
    assert list(documented["422"]["content"]) == ["application/problem+json"]
    answered = await client.get(f"{API}/categories/0")
    assert_problem(answered, 422)


@one_backend
async def test_graphql_routes_document_graphiql_and_plain_text_refusals(
    openapi_document, anonymous
):
    get = openapi_document["paths"]["/graphql"]["get"]
    post = openapi_document["paths"]["/graphql"]["post"]
    assert set(get["responses"]["200"]["content"]) == {"text/html", "application/json"}
    assert set(post["responses"]["200"]["content"]) == {"application/json"}
    for operation in (get, post):
        assert operation["tags"] == ["graphql"]
        assert set(operation["responses"]["400"]["content"]) == {"text/plain"}
    page = await anonymous.get("/graphql", headers={"Accept": "text/html"})
    assert page.headers["content-type"].split(";")[0] in get["responses"]["200"]["content"]
    refused = await anonymous.post("/graphql", content=b"x", headers={"content-type": "text/csv"})
    assert refused.status_code == 400
    assert refused.headers["content-type"].split(";")[0] == "text/plain"

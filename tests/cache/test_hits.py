"""Cached reads: a repeat is a hit that runs no SQL, and each answer is its own entry.

A hit that still ran SQL (the signed-in user looked up again, a session
opened) would not be a coherent response cache; a key that changes per
request (fastapi-cache2's default) would never hit at all. So every test
here counts the statements the app's engine sends while a request is served.
"""

from __future__ import annotations

import httpx
import pytest

from inventory import security
from inventory.models import Role
from tests.cache.helpers import StatementLog, url, warm
from tests.helpers import API, create

# Every cached read, by path; ``{…}`` are the ids of the ``shop`` fixture.
CACHED = [
    "/products/{product}",
    "/products?limit=50",
    "/products?below_reorder=true",
    "/categories",
    "/categories/{category}",
    "/suppliers",
    "/suppliers/{supplier}",
    "/warehouses",
    "/warehouses/{warehouse}",
    "/stock",
    "/stock?product_id={product}",
]


def directives(cache_control: str) -> dict[str, str]:
    """``Cache-Control`` as {directive: value}, lower-cased."""
    found = {}
    for part in cache_control.lower().split(","):
        name, _, value = part.strip().partition("=")
        found[name] = value.strip('"')
    return found


@pytest.mark.parametrize("path", CACHED)
async def test_a_repeated_read_is_a_hit_that_runs_no_sql(viewer, sql, shop, path):
    target = url(path, shop)
    first, first_sql = await sql.get(viewer, target)
    assert first.status_code == 200, first.text
    assert first.headers["x-cache"] == "MISS"
    assert first_sql, "the first read should have gone to the database"
    for _ in range(3):
        again, statements = await sql.get(viewer, target)
        assert again.status_code == 200
        assert again.headers["x-cache"] == "HIT"
        assert statements == []
        assert again.content == first.content


async def test_a_new_token_of_a_remembered_user_runs_no_sql(viewer, sql, shop, settings):
    """The user is remembered by id, and checking a token's signature needs no database."""
    target = url("/products/{product}", shop)
    await warm(viewer, target)
    viewer_id = (await viewer.get(f"{API}/users/me")).json()["id"]
    fresh = security.create_access_token(viewer_id, Role.viewer, settings).token
    headers = {"Authorization": f"Bearer {fresh}"}
    first, first_sql = await sql.get(viewer, target, headers=headers)
    assert first.headers["x-cache"] == "HIT"
    assert first_sql == [], "the user is remembered by id; a new token needs no SQL"
    again, statements = await sql.get(viewer, target, headers=headers)
    assert again.headers["x-cache"] == "HIT"
    assert statements == []


@pytest.mark.parametrize(
    ("path", "a", "b"),
    [
        ("/products", {"limit": 1}, {"limit": 2}),
        ("/products", {"q": "C-1"}, {"q": "C-2"}),
        ("/products", {"sort": "sku"}, {"sort": "-updated_at"}),
        ("/products", {"below_reorder": "true"}, {"below_reorder": "false"}),
        ("/categories", {"limit": 1}, {"limit": 2}),
        ("/stock", {"product_id": "{product}"}, {"product_id": "{other}"}),
    ],
)
async def test_different_queries_are_different_entries(viewer, client, sql, shop, path, a, b):
    await create(client, "/categories", name="Paint")
    shop = shop | {"other": shop["products"][1]}
    await client.post(
        f"{API}/stock/movements",
        json={
            "product_id": shop["other"],
            "warehouse_id": shop["warehouse"],
            "kind": "receipt",
            "quantity": 1,
        },
    )
    a = {k: v.format(**shop) if isinstance(v, str) else v for k, v in a.items()}
    b = {k: v.format(**shop) if isinstance(v, str) else v for k, v in b.items()}
    first_a = await viewer.get(API + path, params=a)
    first_b = await viewer.get(API + path, params=b)
    assert first_a.status_code == first_b.status_code == 200
    assert first_b.headers["x-cache"] == "MISS", "b must not be answered with a's entry"
    assert first_a.json() != first_b.json()
    for params, first in ((a, first_a), (b, first_b)):
        again = await viewer.get(API + path, params=params)
        assert again.headers["x-cache"] == "HIT"
        assert again.content == first.content


async def test_each_product_and_each_page_is_its_own_entry(viewer, sql, shop):
    for product_id in shop["products"]:
        await warm(viewer, f"{API}/products/{product_id}")
    for product_id in shop["products"]:
        hit, statements = await sql.get(viewer, f"{API}/products/{product_id}")
        assert hit.headers["x-cache"] == "HIT"
        assert statements == []
        assert hit.json()["id"] == product_id
    first = await warm(viewer, f"{API}/products?limit=1")
    cursor = first.json()["next_cursor"]
    second = await viewer.get(f"{API}/products", params={"limit": 1, "cursor": cursor})
    assert second.headers["x-cache"] == "MISS"
    assert second.json()["items"] != first.json()["items"]


# --- namespaces are independent ------------------------------------------------------------

CATALOGUE_READS = [
    "/categories",
    "/categories/{category}",
    "/suppliers",
    "/suppliers/{supplier}",
    "/warehouses",
    "/warehouses/{warehouse}",
]
PRODUCT_READS = ["/products/{product}", "/products?limit=50", "/stock"]


async def _all_hits(viewer: httpx.AsyncClient, sql: StatementLog, targets: list[str]) -> None:
    for target in targets:
        hit, statements = await sql.get(viewer, target)
        assert hit.headers["x-cache"] == "HIT", f"{target} was dropped"
        assert statements == [], target


async def test_a_product_write_leaves_the_catalogue_lists_cached(viewer, client, sql, shop):
    catalogue = [url(p, shop) for p in CATALOGUE_READS]
    product = url("/products/{product}", shop)
    for target in [*catalogue, product]:
        await warm(viewer, target)
    patched = await client.patch(product, json={"name": "Renamed"})
    assert patched.status_code == 200
    assert (
        await client.post(f"{API}/products", json={"sku": "NEW", "name": "New", "unit_price": "1"})
    ).status_code == 201
    await _all_hits(viewer, sql, catalogue)
    changed = await viewer.get(product)
    assert changed.headers["x-cache"] == "MISS"
    assert changed.json()["name"] == "Renamed"


@pytest.mark.parametrize(
    ("path", "change"),
    [
        ("/categories/{category}", {"name": "Hand tools"}),
        ("/suppliers/{supplier}", {"name": "Acme Ltd"}),
        ("/warehouses/{warehouse}", {"name": "Main hall"}),
    ],
)
async def test_a_catalogue_write_leaves_product_reads_cached(
    viewer, client, sql, shop, path, change
):
    products = [url(p, shop) for p in PRODUCT_READS]
    others = [url(p, shop) for p in CATALOGUE_READS if not p.startswith(path.split("/{")[0])]
    entry = url(path, shop)
    for target in [*products, *others, entry]:
        await warm(viewer, target)
    patched = await client.patch(entry, json=change)
    assert patched.status_code == 200, patched.text
    await _all_hits(viewer, sql, products + others)
    changed = await viewer.get(entry)
    assert changed.headers["x-cache"] == "MISS"
    assert changed.json()["name"] == change["name"]


async def test_a_stock_movement_leaves_products_and_the_catalogue_cached(viewer, client, sql, shop):
    unaffected = [url(p, shop) for p in ["/products/{product}", *CATALOGUE_READS]]
    levels = url("/stock", shop)
    for target in [*unaffected, levels]:
        await warm(viewer, target)
    movement = {
        "product_id": shop["product"],
        "warehouse_id": shop["warehouse"],
        "kind": "shipment",
        "quantity": 4,
    }
    assert (await client.post(f"{API}/stock/movements", json=movement)).status_code == 201
    await _all_hits(viewer, sql, unaffected)
    changed = await viewer.get(levels)
    assert changed.headers["x-cache"] == "MISS"
    assert changed.json()["items"][0]["quantity"] == 6


@pytest.mark.parametrize("namespace", ["products", ":products"], ids=["plain", "as FastAPICache"])
async def test_clearing_one_namespace_leaves_the_others(app, viewer, sql, shop, namespace):
    """The Backend's ``clear(namespace)`` (FastAPICache passes ``":products"``) is that one only."""
    product, categories = url("/products/{product}", shop), url("/categories", shop)
    for target in (product, categories):
        await warm(viewer, target)
    await app.state.cache.clear(namespace=namespace)
    assert (await viewer.get(product)).headers["x-cache"] == "MISS"
    await _all_hits(viewer, sql, [categories])


# --- a client cannot send the reads to the database ---------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "no-cache"},
        {"Cache-Control": "no-store"},
        {"Cache-Control": "no-cache, no-store, max-age=0"},
        {"Cache-Control": "max-age=0"},
        {"Pragma": "no-cache"},
    ],
)
@pytest.mark.parametrize(
    "path", ["/products/{product}", "/products?limit=50", "/categories", "/stock"]
)
async def test_client_cache_control_cannot_force_a_database_read(viewer, sql, shop, path, headers):
    target = url(path, shop)
    await warm(viewer, target)
    for _ in range(3):
        answer, statements = await sql.get(viewer, target, headers=headers)
        assert answer.status_code == 200
        assert answer.headers["x-cache"] == "HIT"
        assert statements == []


async def test_a_no_store_read_of_an_uncached_entry_still_fills_the_cache(viewer, sql, shop):
    target = url("/products/{product}", shop)
    first = await viewer.get(target, headers={"Cache-Control": "no-store"})
    assert first.headers["x-cache"] == "MISS"
    again, statements = await sql.get(viewer, target, headers={"Cache-Control": "no-store"})
    assert again.headers["x-cache"] == "HIT"
    assert statements == []


# --- response headers ----------------------------------------------------------------------


@pytest.mark.parametrize("path", CACHED)
async def test_cached_answers_are_private_with_no_freshness_lifetime(viewer, shop, path):
    target = url(path, shop)
    miss = await viewer.get(target)
    hit = await viewer.get(target)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    for answer in (miss, hit):
        found = directives(answer.headers["cache-control"])
        assert "private" in found, found
        assert "public" not in found, found
        assert int(found.get("max-age", "0") or "0") == 0, found
        assert "s-maxage" not in found, found
    assert hit.headers["content-type"] == miss.headers["content-type"] == "application/json"


async def test_a_product_etag_is_its_version_on_miss_and_hit(viewer, client, sql, shop):
    target = url("/products/{product}", shop)
    miss = await viewer.get(target)
    hit = await viewer.get(target)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    version = miss.json()["version"]
    assert miss.headers["etag"] == hit.headers["etag"] == f'"{version}"'

    for tag in (f'"{version}"', f'W/"{version}"', f'"99", "{version}"', "*"):
        answer, statements = await sql.get(viewer, target, headers={"If-None-Match": tag})
        assert answer.status_code == 304, tag
        assert answer.content == b""
        assert answer.headers["etag"] == f'"{version}"'
        assert statements == [], tag
    other, statements = await sql.get(viewer, target, headers={"If-None-Match": '"99"'})
    assert other.status_code == 200
    assert other.headers["x-cache"] == "HIT"
    assert statements == []

    patched = await client.patch(target, json={"name": "Changed"})
    assert patched.headers["etag"] == f'"{version + 1}"'
    after = await viewer.get(target, headers={"If-None-Match": f'"{version}"'})
    assert after.status_code == 200
    assert after.headers["etag"] == f'"{version + 1}"'
    assert after.json()["name"] == "Changed"
    cached = await viewer.get(target, headers={"If-None-Match": f'"{version + 1}"'})
    assert cached.status_code == 304

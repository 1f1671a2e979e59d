"""Read after write in one process: every way of writing makes the next read show the write.

Each test first warms what it then expects to change (the answer is a cache
hit), writes through one of the fronts (REST, GraphQL, a CSV import job, a
change to a user), and reads again: a write that did not invalidate what it
touched would be served stale here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from inventory.models import Role
from tests.cache.helpers import url, warm
from tests.conftest import Account
from tests.graphql.helpers import gql
from tests.helpers import API, assert_problem, create_product


async def _items(http: httpx.AsyncClient, target: str, **params: Any) -> list[dict[str, Any]]:
    answer = await http.get(target, params=params)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def _skus(http: httpx.AsyncClient, **params: Any) -> set[str]:
    return {p["sku"] for p in await _items(http, f"{API}/products", **params)}


async def _move(http: httpx.AsyncClient, shop: dict[str, Any], kind: str, quantity: int) -> None:
    movement = {
        "product_id": shop["product"],
        "warehouse_id": shop["warehouse"],
        "kind": kind,
        "quantity": quantity,
    }
    answer = await http.post(f"{API}/stock/movements", json=movement)
    assert answer.status_code == 201, answer.text


# --- products over REST ----------------------------------------------------------------------


async def test_a_product_patch_is_read_back_everywhere_it_shows(viewer, client, shop):
    product = url("/products/{product}", shop)
    reads = [
        product,
        f"{API}/products?limit=50",
        f"{API}/products?below_reorder=true",
        f"{API}/products?q=renamed",
        f"{API}/stock",
    ]
    for target in reads:
        await warm(viewer, target)
    before = (await viewer.get(product)).json()

    patched = await client.patch(product, json={"name": "Renamed", "reorder_level": 20})
    assert patched.status_code == 200, patched.text

    after = await viewer.get(product)
    assert after.json()["name"] == "Renamed"
    assert after.json()["version"] == before["version"] + 1
    assert after.headers["etag"] == f'"{before["version"] + 1}"'
    listed = {p["sku"]: p for p in await _items(viewer, f"{API}/products", limit=50)}
    assert listed["C-0"]["name"] == "Renamed"
    assert await _skus(viewer, q="renamed") == {"C-0"}
    # 10 on hand, reorder level now 20: below it.
    assert "C-0" in await _skus(viewer, below_reorder="true")
    (level,) = await _items(viewer, f"{API}/stock")
    assert level["reorder_level"] == 20


async def test_a_created_product_is_listed_at_once(viewer, client, shop):
    for target in (f"{API}/products?limit=50", f"{API}/products?below_reorder=true"):
        await warm(viewer, target)
    created = await create_product(client, "NEW-1")
    assert "NEW-1" in await _skus(viewer, limit=50)
    assert "NEW-1" in await _skus(viewer, below_reorder="true")  # 0 on hand, level 0
    assert (await viewer.get(f"{API}/products/{created['id']}")).json()["sku"] == "NEW-1"


async def test_a_deleted_product_is_gone_at_once(viewer, client, shop):
    unstocked = shop["products"][1]
    product = f"{API}/products/{unstocked}"
    for target in (product, f"{API}/products?limit=50"):
        await warm(viewer, target)
    assert (await client.delete(product)).status_code == 204
    assert_problem(await viewer.get(product), 404)
    assert "C-1" not in await _skus(viewer, limit=50)


# --- categories, suppliers, warehouses -------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "noun", "new"),
    [
        ("/categories", "category", {"name": "Garden"}),
        ("/suppliers", "supplier", {"name": "Newco"}),
        ("/warehouses", "warehouse", {"code": "EAST", "name": "East"}),
    ],
)
async def test_catalogue_writes_are_read_back_at_once(viewer, client, shop, path, noun, new):
    listing, entry = f"{API}{path}", f"{API}{path}/{shop[noun]}"
    for target in (listing, entry):
        await warm(viewer, target)

    patched = await client.patch(entry, json={"name": "Renamed"})
    assert patched.status_code == 200, patched.text
    assert (await viewer.get(entry)).json()["name"] == "Renamed"
    assert [e["name"] for e in await _items(viewer, listing)] == ["Renamed"]

    await warm(viewer, listing)
    created = await client.post(listing, json=new)
    assert created.status_code == 201, created.text
    assert {e["name"] for e in await _items(viewer, listing)} == {"Renamed", new["name"]}

    fresh = f"{listing}/{created.json()['id']}"
    await warm(viewer, fresh)
    await warm(viewer, listing)
    assert (await client.delete(fresh)).status_code == 204
    assert_problem(await viewer.get(fresh), 404)
    assert [e["name"] for e in await _items(viewer, listing)] == ["Renamed"]


# --- stock -----------------------------------------------------------------------------------


async def test_a_movement_changes_the_levels_and_the_below_reorder_lists(viewer, client, shop):
    reads = [
        f"{API}/stock",
        f"{API}/stock?product_id={shop['product']}",
        f"{API}/stock?below_reorder=true",
        f"{API}/products?below_reorder=true",
        f"{API}/products?below_reorder=false",
    ]
    for target in reads:
        await warm(viewer, target)
    assert "C-0" in await _skus(viewer, below_reorder="false")

    await _move(client, shop, "shipment", 6)  # 10 -> 4, reorder level 5

    (level,) = await _items(viewer, f"{API}/stock", product_id=shop["product"])
    assert level["quantity"] == 4
    assert [lv["quantity"] for lv in await _items(viewer, f"{API}/stock")] == [4]
    assert len(await _items(viewer, f"{API}/stock", below_reorder="true")) == 1
    assert "C-0" in await _skus(viewer, below_reorder="true")
    assert "C-0" not in await _skus(viewer, below_reorder="false")

    for target in reads:
        await warm(viewer, target)
    await _move(client, shop, "receipt", 2)  # 4 -> 6: above the reorder level again
    assert [lv["quantity"] for lv in await _items(viewer, f"{API}/stock")] == [6]
    assert "C-0" in await _skus(viewer, below_reorder="false")
    assert await _items(viewer, f"{API}/stock", below_reorder="true") == []


async def test_a_transfer_shows_both_legs_at_once(viewer, client, shop):
    east = await client.post(f"{API}/warehouses", json={"code": "EAST", "name": "East"})
    await warm(viewer, f"{API}/stock")
    transfer = {
        "product_id": shop["product"],
        "from_warehouse_id": shop["warehouse"],
        "to_warehouse_id": east.json()["id"],
        "quantity": 3,
    }
    assert (await client.post(f"{API}/stock/transfers", json=transfer)).status_code == 201
    levels = {lv["warehouse_id"]: lv["quantity"] for lv in await _items(viewer, f"{API}/stock")}
    assert levels == {shop["warehouse"]: 7, east.json()["id"]: 3}


# --- GraphQL mutations -----------------------------------------------------------------------

UPDATE_PRODUCT = """mutation($id: ID!, $input: UpdateProductInput!) {
  updateProduct(id: $id, input: $input) { __typename ... on Product { name version } } }"""
RECORD_MOVEMENT = """mutation($input: RecordMovementInput!) {
  recordMovement(input: $input) { __typename ... on Movement { quantity } } }"""
CREATE_CATEGORY = """mutation($input: CreateCategoryInput!) {
  createCategory(input: $input) { __typename ... on Category { id name } } }"""


async def test_a_graphql_product_update_is_read_back_over_rest(viewer, client, shop):
    product = url("/products/{product}", shop)
    for target in (product, f"{API}/products?limit=50"):
        await warm(viewer, target)
    body = await gql(client, UPDATE_PRODUCT, id=str(shop["product"]), input={"name": "Via GraphQL"})
    assert body["data"]["updateProduct"]["__typename"] == "Product", body
    after = (await viewer.get(product)).json()
    assert (after["name"], after["version"]) == ("Via GraphQL", 2)
    assert {p["name"] for p in await _items(viewer, f"{API}/products")} >= {"Via GraphQL"}


async def test_a_graphql_movement_is_read_back_over_rest(viewer, client, shop):
    for target in (f"{API}/stock", f"{API}/products?below_reorder=true"):
        await warm(viewer, target)
    movement = {
        "productId": str(shop["product"]),
        "warehouseId": str(shop["warehouse"]),
        "kind": "SHIPMENT",
        "quantity": 9,
    }
    body = await gql(client, RECORD_MOVEMENT, input=movement)
    assert body["data"]["recordMovement"] == {"__typename": "Movement", "quantity": -9}, body
    assert [lv["quantity"] for lv in await _items(viewer, f"{API}/stock")] == [1]
    assert "C-0" in await _skus(viewer, below_reorder="true")


async def test_a_graphql_catalogue_create_is_listed_at_once(viewer, client, shop):
    await warm(viewer, f"{API}/categories")
    body = await gql(client, CREATE_CATEGORY, input={"name": "Garden"})
    assert body["data"]["createCategory"]["__typename"] == "Category", body
    assert {c["name"] for c in await _items(viewer, f"{API}/categories")} == {"Tools", "Garden"}


# --- CSV import jobs -------------------------------------------------------------------------

HEADER = "sku,name,description,category,supplier,unit_price,reorder_level,is_active\n"


async def test_an_import_job_is_read_back_at_once_when_it_finishes(viewer, client, shop):
    product = url("/products/{product}", shop)
    reads = [product, f"{API}/products?limit=50", f"{API}/categories", f"{API}/suppliers"]
    for target in reads:
        await warm(viewer, target)
    content = (
        HEADER
        + "C-0,Renamed by import,,Tools,Acme,2.00,5,true\n"
        + "IMP-1,Imported,,Garden,Newco,3.00,0,true\n"
    ).encode()
    accepted = await client.post(
        f"{API}/imports/products", files={"file": ("p.csv", content, "text/csv")}
    )
    assert accepted.status_code == 202, accepted.text
    for _ in range(200):
        job = (await client.get(f"{API}/imports/{accepted.json()['id']}")).json()
        if job["status"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "succeeded", job

    assert (await viewer.get(product)).json()["name"] == "Renamed by import"
    assert await _skus(viewer, limit=50) == {"C-0", "C-1", "C-2", "IMP-1"}
    assert {c["name"] for c in await _items(viewer, f"{API}/categories")} == {"Tools", "Garden"}
    assert {s["name"] for s in await _items(viewer, f"{API}/suppliers")} == {"Acme", "Newco"}


# --- users: what was remembered of them -------------------------------------------------------


async def test_a_deactivated_user_is_refused_at_once(viewer, client, accounts, shop):
    product = url("/products/{product}", shop)
    await warm(viewer, product)  # the viewer is remembered, the product cached
    patched = await client.patch(
        f"{API}/users/{accounts[Role.viewer].id}", json={"is_active": False}
    )
    assert patched.status_code == 200, patched.text
    assert_problem(await viewer.get(product), 401)
    assert_problem(await viewer.get(f"{API}/categories"), 401)

    assert (
        await client.patch(f"{API}/users/{accounts[Role.viewer].id}", json={"is_active": True})
    ).status_code == 200
    # Reactivation does not bring the old session back; signing in again does.
    assert_problem(await viewer.get(product), 401)
    fresh = await fresh_headers(client, accounts[Role.viewer])
    assert (await viewer.get(product, headers=fresh)).status_code == 200


async def fresh_headers(client: httpx.AsyncClient, account: Account) -> dict[str, str]:
    """The headers of a new sign-in of ``account``."""
    signed_in = await client.post(
        f"{API}/auth/token", data={"username": account.email, "password": account.password}
    )
    assert signed_in.status_code == 200, signed_in.text
    return {"Authorization": f"Bearer {signed_in.json()['access_token']}"}


async def test_a_role_change_applies_to_the_next_request(client, accounts, shop):
    manager, viewer = accounts[Role.manager], accounts[Role.viewer]
    new = {"sku": "ROLE-1", "name": "Role", "unit_price": "1"}
    made = await client.post(f"{API}/products", json=new, headers=manager.headers)
    assert made.status_code == 201  # the manager is remembered as a manager
    refused = await client.post(f"{API}/products", json=new, headers=viewer.headers)
    assert_problem(refused, 403)  # and the viewer as a viewer

    for account, role in ((manager, "viewer"), (viewer, "manager")):
        patched = await client.patch(f"{API}/users/{account.id}", json={"role": role})
        assert patched.status_code == 200, patched.text
    # A role change ends the sessions begun before it...
    for account in (manager, viewer):
        assert_problem(await client.get(f"{API}/products", headers=account.headers), 401)

    # ...and the next sign-in carries the new role.
    demoted = await client.post(
        f"{API}/products",
        json=new | {"sku": "ROLE-2"},
        headers=await fresh_headers(client, manager),
    )
    assert_problem(demoted, 403)
    promoted = await client.post(
        f"{API}/products",
        json=new | {"sku": "ROLE-3"},
        headers=await fresh_headers(client, viewer),
    )
    assert promoted.status_code == 201, promoted.text

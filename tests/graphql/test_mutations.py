"""The catalogue mutations: each does what REST's POST, PATCH and DELETE do, and refuses alike.

After every call the test reads the database back through REST.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.graphql.helpers import (
    CATEGORY,
    PRODUCT,
    SUPPLIER,
    WAREHOUSE,
    as_rest,
    everything,
    gql,
    rest,
    rest_loc,
)
from tests.helpers import API, assert_problem, create, create_product, error_locs

ERRORS = """
... on NotFound { message }
... on Conflict { message }
... on PreconditionFailed { message }
... on ValidationFailed { message errors { loc msg type } }
"""


@dataclass(frozen=True)
class Family:
    name: str
    path: str
    fields: str
    minimal: dict[str, Any]
    unique: str
    full: dict[str, Any]
    invalid: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def create(self) -> str:
        return f"""mutation($input: Create{self.name}Input!) {{
          result: create{self.name}(input: $input) {{
            __typename ... on {self.name} {{ {self.fields} }} {ERRORS} }} }}"""

    def update(self) -> str:
        return f"""mutation($id: ID!, $input: Update{self.name}Input!) {{
          result: update{self.name}(id: $id, input: $input) {{
            __typename ... on {self.name} {{ {self.fields} }} {ERRORS} }} }}"""

    def delete(self) -> str:
        return f"""mutation($id: ID!) {{
          result: delete{self.name}(id: $id) {{ __typename ... on Deleted {{ id }} {ERRORS} }} }}"""

    def url(self, entry_id: Any = "") -> str:
        return f"{API}{self.path}/{entry_id}".rstrip("/")

    def named(self, value: str) -> dict[str, Any]:
        return self.minimal | {self.unique: value}


def snake_body(graphql_input: dict[str, Any]) -> dict[str, Any]:
    """The REST body that says what a GraphQL input says."""
    return {re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower(): v for k, v in graphql_input.items()}


BLANK_OR_BAD_NAMES = [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "nul\u0000byte"}, "name"),
]
FAMILIES = [
    Family(
        "Category",
        "/categories",
        CATEGORY,
        {"name": "Fasteners"},
        "name",
        {"description": "Bolts and nuts"},
        BLANK_OR_BAD_NAMES,
    ),
    Family(
        "Supplier",
        "/suppliers",
        SUPPLIER,
        {"name": "Acme"},
        "name",
        {"email": "sales@acme.example", "phone": "+1 555 0100"},
        [*BLANK_OR_BAD_NAMES, ({"email": "not-an-email"}, "email")],
    ),
    Family(
        "Warehouse",
        "/warehouses",
        WAREHOUSE,
        {"code": "MAIN", "name": "Main"},
        "code",
        {"address": "1 Dock Road", "isActive": False},
        [
            *BLANK_OR_BAD_NAMES,
            ({"code": "A B"}, "code"),
            ({"code": "-LEADING"}, "code"),
            ({"code": "É"}, "code"),
            ({"isActive": None}, "isActive"),
        ],
    ),
]
CASES = [(f, change, loc) for f in FAMILIES for change, loc in f.invalid]


@pytest.fixture(params=FAMILIES, ids=[f.name for f in FAMILIES])
def family(request: pytest.FixtureRequest) -> Family:
    return request.param  # type: ignore[no-any-return]


async def get(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_answers_what_rest_then_serves(client, family):
    body = await gql(client, family.create(), input=family.minimal | family.full)
    created = body["data"]["result"]
    assert created.pop("__typename") == family.name
    for key, value in (family.minimal | family.full).items():
        assert created[key] == value
    stored = await get(client, family.url(created["id"]))
    assert as_rest(created) == rest(stored)
    assert len((await get(client, family.url()))["items"]) == 1


async def test_create_fills_defaults_as_rest_does(client, family):
    body = await gql(client, family.create(), input=family.minimal)
    created = as_rest(body["data"]["result"])
    created.pop("__typename")
    response = await client.post(family.url(), json=snake_body(family.named("SECOND")))
    assert response.status_code == 201
    by_rest = rest(response.json())
    # Same fields with the same defaults; only identity and the unique value differ.
    for key in ("id", family.unique, "created_at", "updated_at"):
        created.pop(key), by_rest.pop(key)
    assert created == by_rest


async def test_duplicate_is_conflict_and_writes_nothing(client, family):
    await create(client, family.path, **snake_body(family.minimal))
    body = await gql(client, family.create(), input=family.minimal)
    result = body["data"]["result"]
    assert result["__typename"] == "Conflict"
    by_rest = assert_problem(await client.post(family.url(), json=snake_body(family.minimal)), 409)
    assert result["message"] == by_rest["detail"]
    assert len((await get(client, family.url()))["items"]) == 1


@pytest.mark.parametrize(
    ("family", "change", "loc"),
    CASES,
    ids=[f"{f.name}-{loc}-{i}" for i, (f, _, loc) in enumerate(CASES)],
)
async def test_invalid_input_fails_at_the_field_rest_names(client, family, change, loc):
    graphql_input = family.minimal | change
    body = await gql(client, family.create(), input=graphql_input)
    result = body["data"]["result"]
    assert result["__typename"] == "ValidationFailed"
    by_rest = await client.post(family.url(), json=snake_body(graphql_input))
    assert [e["loc"] for e in result["errors"]] == [["input", loc]]
    assert [e["loc"] for e in result["errors"]] == [
        rest_loc(where) for where in error_locs(by_rest)
    ]
    assert [(e["msg"], e["type"]) for e in result["errors"]] == [
        (e["msg"], e["type"]) for e in by_rest.json()["errors"]
    ]
    assert (await get(client, family.url()))["items"] == []


async def test_a_missing_required_field_is_refused_by_the_schema(client, family):
    body = await gql(client, family.create(), input={})
    assert body.get("data") is None
    assert family.unique in body["errors"][0]["message"]
    assert (await get(client, family.url()))["items"] == []


async def test_update_changes_only_the_fields_sent(client, family):
    created = await create(client, family.path, **snake_body(family.minimal | family.full))
    body = await gql(client, family.update(), id=str(created["id"]), input={family.unique: "NEW"})
    updated = body["data"]["result"]
    assert updated.pop("__typename") == family.name
    stored = await get(client, family.url(created["id"]))
    assert as_rest(updated) == rest(stored)
    assert stored[family.unique] == "NEW"
    unchanged = {k: v for k, v in created.items() if k not in (family.unique, "updated_at")}
    assert {k: stored[k] for k in unchanged} == unchanged
    assert stored["updated_at"] > created["updated_at"]


async def test_update_with_null_clears_an_optional_field(client, family):
    created = await create(client, family.path, **snake_body(family.minimal | family.full))
    optional = next(k for k, v in family.full.items() if isinstance(v, str))
    body = await gql(client, family.update(), id=str(created["id"]), input={optional: None})
    assert body["data"]["result"][optional] is None
    stored = await get(client, family.url(created["id"]))
    assert stored == created | snake_body({optional: None}) | {"updated_at": stored["updated_at"]}


async def test_update_with_null_for_a_required_field_is_refused_like_rest(client, family):
    created = await create(client, family.path, **snake_body(family.minimal))
    body = await gql(client, family.update(), id=str(created["id"]), input={family.unique: None})
    result = body["data"]["result"]
    assert result["__typename"] == "ValidationFailed"
    by_rest = await client.patch(family.url(created["id"]), json={family.unique: None})
    assert [e["loc"] for e in result["errors"]] == [
        rest_loc(where) for where in error_locs(by_rest)
    ]
    assert await get(client, family.url(created["id"])) == created


async def test_update_to_a_duplicate_is_conflict(client, family):
    await create(client, family.path, **snake_body(family.minimal))
    other = await create(client, family.path, **snake_body(family.named("OTHER")))
    taken = family.minimal[family.unique]
    body = await gql(client, family.update(), id=str(other["id"]), input={family.unique: taken})
    assert body["data"]["result"]["__typename"] == "Conflict"
    assert taken in body["data"]["result"]["message"]
    assert await get(client, family.url(other["id"])) == other


async def test_unknown_id_is_not_found_for_update_and_delete(client, family):
    update = await gql(client, family.update(), id="424242", input={family.unique: "X1"})
    delete = await gql(client, family.delete(), id="424242")
    for body in (update, delete):
        assert body["data"]["result"]["__typename"] == "NotFound"
        assert "424242" in body["data"]["result"]["message"]
    assert (await get(client, family.url()))["items"] == []


@pytest.mark.parametrize("entry_id", ["abc", "0", "-1", "99999999999999999999", "²"])
async def test_an_id_rest_would_refuse_is_validation_failed(client, family, entry_id):
    created = await create(client, family.path, **snake_body(family.minimal))
    before = await everything(client)
    assert error_locs(await client.delete(family.url(entry_id))) == [["path", "entry_id"]]
    for document, extra in (
        (family.update(), {"input": {family.unique: "X1"}}),
        (family.delete(), {}),
    ):
        body = await gql(client, document, id=entry_id, **extra)
        result = body["data"]["result"]
        assert result["__typename"] == "ValidationFailed", body
        assert [e["loc"] for e in result["errors"]] == [["id"]]
    assert await everything(client) == before
    assert await get(client, family.url(created["id"])) == created


async def test_delete_answers_the_id_and_the_entry_is_gone(client, family):
    created = await create(client, family.path, **snake_body(family.minimal))
    body = await gql(client, family.delete(), id=str(created["id"]))
    assert body["data"]["result"] == {"__typename": "Deleted", "id": str(created["id"])}
    assert_problem(await client.get(family.url(created["id"])), 404)
    again = await gql(client, family.delete(), id=str(created["id"]))
    assert again["data"]["result"]["__typename"] == "NotFound"


async def _refer_to(client: httpx.AsyncClient, family: Family, entry_id: int) -> None:
    """Make a product or the ledger refer to the entry, as REST's 409 on delete needs."""
    if family.name == "Warehouse":
        product = await create_product(client, "REF-1")
        response = await client.post(
            f"{API}/stock/movements",
            json={
                "product_id": product["id"],
                "warehouse_id": entry_id,
                "kind": "receipt",
                "quantity": 1,
            },
        )
        assert response.status_code == 201, response.text
    else:
        await create_product(client, "REF-1", **{f"{family.name.lower()}_id": entry_id})


async def test_a_refused_mutation_leaves_the_next_one_in_the_request_working(client, family):
    await create(client, family.path, **snake_body(family.minimal))
    other = await create(client, family.path, **snake_body(family.named("OTHER")))
    taken = family.minimal[family.unique]
    name = family.name
    document = f"""mutation($id: ID!, $taken: Update{name}Input!, $new: Create{name}Input!) {{
      refused: update{family.name}(id: $id, input: $taken) {{ __typename }}
      created: create{family.name}(input: $new) {{ __typename ... on {family.name} {{ id }} }}
    }}"""
    body = await gql(
        client,
        document,
        id=str(other["id"]),
        taken={family.unique: taken},
        new=family.named("THIRD"),
    )
    assert body["data"]["refused"] == {"__typename": "Conflict"}
    assert body["data"]["created"]["__typename"] == family.name
    assert await get(client, family.url(other["id"])) == other
    third = await get(client, family.url(body["data"]["created"]["id"]))
    assert third[family.unique] == "THIRD"


async def test_deleting_a_referenced_entry_is_conflict_like_rest(client, family):
    created = await create(client, family.path, **snake_body(family.minimal))
    await _refer_to(client, family, created["id"])
    before = await everything(client)
    body = await gql(client, family.delete(), id=str(created["id"]))
    result = body["data"]["result"]
    assert result["__typename"] == "Conflict"
    by_rest = assert_problem(await client.delete(family.url(created["id"])), 409)
    assert result["message"] == by_rest["detail"]
    assert await everything(client) == before


# Products: the same family of mutations, plus references, prices and versions.

PRODUCTS = f"{API}/products"
CREATE_PRODUCT = f"""mutation($input: CreateProductInput!) {{
  result: createProduct(input: $input) {{
    __typename ... on Product {{ {PRODUCT} }} {ERRORS} }} }}"""
UPDATE_PRODUCT = f"""mutation($id: ID!, $input: UpdateProductInput!, $version: Int) {{
  result: updateProduct(id: $id, input: $input, expectedVersion: $version) {{
    __typename ... on Product {{ {PRODUCT} }} {ERRORS} }} }}"""
DELETE_PRODUCT = f"""mutation($id: ID!) {{
  result: deleteProduct(id: $id) {{ __typename ... on Deleted {{ id }} {ERRORS} }} }}"""


@pytest.fixture
async def refs(client) -> dict[str, int]:
    category = await create(client, "/categories", name="Tools")
    supplier = await create(client, "/suppliers", name="Acme")
    return {"categoryId": category["id"], "supplierId": supplier["id"]}


async def test_create_product_with_every_field_is_what_rest_serves(client, refs):
    graphql_input = {
        "sku": " bolt-1 ",
        "name": "Bolt",
        "description": "M6",
        "categoryId": str(refs["categoryId"]),
        "supplierId": str(refs["supplierId"]),
        "unitPrice": "12.5",
        "reorderLevel": 4,
        "isActive": False,
    }
    body = await gql(client, CREATE_PRODUCT, input=graphql_input)
    created = body["data"]["result"]
    assert created.pop("__typename") == "Product"
    assert (created["sku"], created["unitPrice"], created["version"]) == ("BOLT-1", "12.50", 1)
    assert as_rest(created) == rest(await get(client, f"{PRODUCTS}/{created['id']}"))


def _product_body(graphql_input: dict[str, Any]) -> dict[str, Any]:
    body = snake_body(graphql_input)
    for key in ("category_id", "supplier_id"):
        if isinstance(body.get(key), str) and body[key].isdigit():
            body[key] = int(body[key])
    return body


PRODUCT_CASES = [
    {"sku": "A B"},
    {"sku": "ÄÖ"},
    {"sku": "x" * 65},
    {"name": ""},
    {"unitPrice": "-0.01"},
    {"unitPrice": "1.001"},
    {"unitPrice": "abc"},
    {"unitPrice": "NaN"},
    {"reorderLevel": -1},
    {"isActive": None},
    {"categoryId": "999"},
    {"categoryId": "999", "supplierId": "998"},
    {"categoryId": str(2**40)},
    {"description": "nul\u0000"},
]


@pytest.mark.parametrize("change", PRODUCT_CASES, ids=[str(c)[:40] for c in PRODUCT_CASES])
async def test_invalid_product_input_fails_where_rest_says(client, change):
    graphql_input = {"sku": "OK-1", "name": "Fine", "unitPrice": "1.00"} | change
    body = await gql(client, CREATE_PRODUCT, input=graphql_input)
    result = body["data"]["result"]
    assert result["__typename"] == "ValidationFailed", result
    by_rest = await client.post(PRODUCTS, json=_product_body(graphql_input))
    assert [e["loc"] for e in result["errors"]] == [
        rest_loc(where) for where in error_locs(by_rest)
    ]
    assert [e["msg"] for e in result["errors"]] == [e["msg"] for e in by_rest.json()["errors"]]
    assert (await get(client, PRODUCTS))["items"] == []


async def test_duplicate_sku_in_any_case_is_conflict(client):
    await create_product(client, "A-1")
    body = await gql(client, CREATE_PRODUCT, input={"sku": "a-1", "name": "X", "unitPrice": "1"})
    assert body["data"]["result"]["__typename"] == "Conflict"
    assert "'A-1'" in body["data"]["result"]["message"]
    assert [p["sku"] for p in (await get(client, PRODUCTS))["items"]] == ["A-1"]


async def test_update_product_sends_only_what_changes_and_can_clear_a_reference(client, refs):
    product = await create_product(client, "U-1", category_id=refs["categoryId"], reorder_level=3)
    body = await gql(
        client,
        UPDATE_PRODUCT,
        id=str(product["id"]),
        input={"unitPrice": "6.5", "categoryId": None},
    )
    updated = body["data"]["result"]
    assert updated.pop("__typename") == "Product"
    stored = await get(client, f"{PRODUCTS}/{product['id']}")
    assert as_rest(updated) == rest(stored)
    assert stored == product | {
        "unit_price": "6.50",
        "category_id": None,
        "version": 2,
        "updated_at": stored["updated_at"],
    }


async def test_update_product_to_a_missing_category_fails_at_that_field(client):
    product = await create_product(client, "U-2")
    body = await gql(client, UPDATE_PRODUCT, id=str(product["id"]), input={"categoryId": "999"})
    result = body["data"]["result"]
    assert result["__typename"] == "ValidationFailed"
    assert [e["loc"] for e in result["errors"]] == [["input", "categoryId"]]
    assert await get(client, f"{PRODUCTS}/{product['id']}") == product


async def test_expected_version_is_if_match(client):
    product = await create_product(client, "V-1", name="Original")
    url = f"{PRODUCTS}/{product['id']}"
    current = await gql(
        client, UPDATE_PRODUCT, id=str(product["id"]), input={"name": "Second"}, version=1
    )
    assert current["data"]["result"]["__typename"] == "Product"
    assert current["data"]["result"]["version"] == 2

    stale = await gql(
        client, UPDATE_PRODUCT, id=str(product["id"]), input={"name": "Lost update"}, version=1
    )
    assert stale["data"]["result"]["__typename"] == "PreconditionFailed"
    assert "version 2" in stale["data"]["result"]["message"]
    by_rest = await client.patch(url, json={"name": "Lost update"}, headers={"If-Match": '"1"'})
    assert stale["data"]["result"]["message"] == assert_problem(by_rest, 412)["detail"]
    stored = await get(client, url)
    assert (stored["name"], stored["version"]) == ("Second", 2)

    unconditional = await gql(
        client, UPDATE_PRODUCT, id=str(product["id"]), input={"name": "Third"}
    )
    assert unconditional["data"]["result"]["version"] == 3
    assert (await get(client, url))["name"] == "Third"


async def test_update_product_to_a_taken_sku_is_conflict(client):
    await create_product(client, "A-1")
    other = await create_product(client, "B-1")
    body = await gql(client, UPDATE_PRODUCT, id=str(other["id"]), input={"sku": "a-1"})
    assert body["data"]["result"]["__typename"] == "Conflict"
    assert await get(client, f"{PRODUCTS}/{other['id']}") == other


async def test_delete_product_with_stock_is_conflict_and_without_is_deleted(client):
    warehouse = await create(client, "/warehouses", code="MAIN", name="Main")
    stocked = await create_product(client, "S-1")
    spare = await create_product(client, "S-2")
    await client.post(
        f"{API}/stock/movements",
        json={
            "product_id": stocked["id"],
            "warehouse_id": warehouse["id"],
            "kind": "receipt",
            "quantity": 1,
        },
    )
    refused = await gql(client, DELETE_PRODUCT, id=str(stocked["id"]))
    assert refused["data"]["result"]["__typename"] == "Conflict"
    assert await get(client, f"{PRODUCTS}/{stocked['id']}") == stocked

    deleted = await gql(client, DELETE_PRODUCT, id=str(spare["id"]))
    assert deleted["data"]["result"] == {"__typename": "Deleted", "id": str(spare["id"])}
    assert_problem(await client.get(f"{PRODUCTS}/{spare['id']}"), 404)

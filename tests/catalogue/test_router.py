"""Categories, suppliers and warehouses over REST: the same contract for each."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.helpers import API, assert_problem, collect_pages, create, create_product, error_locs


@dataclass(frozen=True)
class Kind:
    path: str
    minimal: dict[str, Any]
    unique_field: str
    full: dict[str, Any] = field(default_factory=dict)

    def minimal_named(self, n: int) -> dict[str, Any]:
        body = dict(self.minimal)
        body[self.unique_field] = f"{body[self.unique_field]}-{n:03d}"
        return body


KINDS = [
    Kind("/categories", {"name": "Fasteners"}, "name", {"description": "Bolts and nuts"}),
    Kind(
        "/suppliers",
        {"name": "Acme"},
        "name",
        {"email": "sales@acme.example", "phone": "+1 555 0100"},
    ),
    Kind("/warehouses", {"code": "MAIN", "name": "Main"}, "code", {"address": "1 Dock Road"}),
]


@pytest.fixture(params=KINDS, ids=[k.path.strip("/") for k in KINDS])
def kind(request: pytest.FixtureRequest) -> Kind:
    return request.param  # type: ignore[no-any-return]


async def test_create_with_minimal_fields_then_get(client, kind):
    response = await client.post(f"{API}{kind.path}", json=kind.minimal)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"{API}{kind.path}/{created['id']}"
    for key, value in kind.minimal.items():
        assert created[key] == value
    assert created["created_at"].endswith("Z") or created["created_at"].endswith("+00:00")

    fetched = await client.get(f"{API}{kind.path}/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_create_with_all_fields(client, kind):
    created = await create(client, kind.path, **kind.minimal, **kind.full)
    for key, value in kind.full.items():
        assert created[key] == value


async def test_duplicate_unique_field_is_409_and_writes_nothing(client, kind):
    await create(client, kind.path, **kind.minimal)
    response = await client.post(f"{API}{kind.path}", json=kind.minimal)
    body = assert_problem(response, 409)
    assert kind.minimal[kind.unique_field] in body["detail"]
    listing = await client.get(f"{API}{kind.path}")
    assert len(listing.json()["items"]) == 1


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"unexpected": "field"}, "unexpected"),
        ({"id": 5}, "id"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "nul\u0000byte"}, "name"),
    ],
)
async def test_invalid_create_bodies_are_422(client, kind, body, loc):
    response = await client.post(f"{API}{kind.path}", json={**kind.minimal, **body})
    assert error_locs(response) == [["body", loc]]
    assert (await client.get(f"{API}{kind.path}")).json()["items"] == []


async def test_missing_required_fields_are_422(client, kind):
    response = await client.post(f"{API}{kind.path}", json={})
    assert sorted(error_locs(response)) == sorted(["body", field] for field in kind.minimal)


async def test_malformed_json_is_422(client, kind):
    response = await client.post(
        f"{API}{kind.path}", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


async def test_update_changes_only_sent_fields(client, kind):
    created = await create(client, kind.path, **kind.minimal, **kind.full)
    new_value = f"{kind.minimal[kind.unique_field]}2"
    response = await client.patch(
        f"{API}{kind.path}/{created['id']}", json={kind.unique_field: new_value}
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated[kind.unique_field] == new_value
    for key, value in kind.full.items():
        assert updated[key] == value
    assert updated["updated_at"] > created["updated_at"]
    assert updated["created_at"] == created["created_at"]


async def test_update_can_clear_optional_field(client, kind):
    created = await create(client, kind.path, **kind.minimal, **kind.full)
    optional = next(iter(kind.full))
    response = await client.patch(f"{API}{kind.path}/{created['id']}", json={optional: None})
    assert response.status_code == 200
    assert response.json()[optional] is None


@pytest.mark.parametrize(
    "body", [{"id": 99}, {"created_at": "2020-01-01T00:00:00Z"}, {"bogus": 1}, {"name": None}]
)
async def test_update_refuses_read_only_unknown_and_null_fields(client, kind, body):
    created = await create(client, kind.path, **kind.minimal)
    response = await client.patch(f"{API}{kind.path}/{created['id']}", json=body)
    assert error_locs(response) == [["body", next(iter(body))]]
    unchanged = await client.get(f"{API}{kind.path}/{created['id']}")
    assert unchanged.json() == created


async def test_update_to_duplicate_is_409(client, kind):
    await create(client, kind.path, **kind.minimal)
    other = await create(client, kind.path, **kind.minimal_named(2))
    response = await client.patch(
        f"{API}{kind.path}/{other['id']}",
        json={kind.unique_field: kind.minimal[kind.unique_field]},
    )
    assert_problem(response, 409)
    unchanged = await client.get(f"{API}{kind.path}/{other['id']}")
    assert unchanged.json() == other


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_unknown_id_is_404(client, kind, method):
    json = {kind.unique_field: "X1"} if method == "PATCH" else None
    response = await client.request(method, f"{API}{kind.path}/424242", json=json)
    body = assert_problem(response, 404)
    assert "424242" in body["detail"]


@pytest.mark.parametrize("entry_id", ["abc", "0", "-1", "99999999999999999999"])
async def test_invalid_id_is_422(client, kind, entry_id):
    response = await client.get(f"{API}{kind.path}/{entry_id}")
    assert error_locs(response) == [["path", "entry_id"]]


async def test_delete_then_gone(client, kind):
    created = await create(client, kind.path, **kind.minimal)
    response = await client.delete(f"{API}{kind.path}/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(f"{API}{kind.path}/{created['id']}"), 404)
    assert_problem(await client.delete(f"{API}{kind.path}/{created['id']}"), 404)


async def test_list_pages_through_everything_in_order(client, kind):
    for n in range(7):
        await create(client, kind.path, **kind.minimal_named(6 - n))
    items = await collect_pages(client, f"{API}{kind.path}", limit=3)
    values = [item[kind.unique_field] for item in items]
    assert len(values) == 7
    assert values == sorted(values)


@pytest.mark.parametrize("path", ["/categories", "/suppliers"])
@pytest.mark.parametrize("limit", [1, 2, 50])
async def test_names_list_ignoring_case_across_pages(client, path, limit):
    for name in ("Foxtrot", "bravo", "Alpha", "alpha beta", "Charlie"):
        await create(client, path, name=name)
    items = await collect_pages(client, f"{API}{path}", limit=limit)
    assert [item["name"] for item in items] == [
        "Alpha",
        "alpha beta",
        "bravo",
        "Charlie",
        "Foxtrot",
    ]


async def test_list_limit_and_next_cursor(client, kind):
    for n in range(3):
        await create(client, kind.path, **kind.minimal_named(n))
    first = (await client.get(f"{API}{kind.path}", params={"limit": 2})).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    second = (
        await client.get(f"{API}{kind.path}", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None


@pytest.mark.parametrize("limit", ["0", "201", "-5", "ten"])
async def test_limit_out_of_range_is_422(client, kind, limit):
    response = await client.get(f"{API}{kind.path}", params={"limit": limit})
    assert error_locs(response) == [["query", "limit"]]


def _cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        "e30",  # {}
        _cursor("sku", "FAS", 1),  # issued for another sort
        _cursor("name", "A", 10**30),
        _cursor("name", "A", 0),
        _cursor("name", "A", True),
        _cursor("name", 5, 1),
        _cursor("name", "nul\u0000", 1),
        _cursor("code", "A", 2**31),
    ],
)
async def test_bad_cursor_is_422(client, kind, cursor):
    response = await client.get(f"{API}{kind.path}", params={"cursor": cursor})
    assert error_locs(response) == [["query", "cursor"]]


async def test_referenced_category_and_supplier_cannot_be_deleted(client):
    category = await create(client, "/categories", name="Tools")
    supplier = await create(client, "/suppliers", name="Acme")
    product = await create_product(
        client, "T-1", category_id=category["id"], supplier_id=supplier["id"]
    )
    for path, entry in (("/categories", category), ("/suppliers", supplier)):
        body = assert_problem(await client.delete(f"{API}{path}/{entry['id']}"), 409)
        assert "products" in body["detail"]
        assert (await client.get(f"{API}{path}/{entry['id']}")).status_code == 200

    assert (await client.delete(f"{API}/products/{product['id']}")).status_code == 204
    assert (await client.delete(f"{API}/categories/{category['id']}")).status_code == 204


async def test_warehouse_code_is_stored_upper_case_and_unique_regardless_of_case(client):
    created = await create(client, "/warehouses", code=" east-1 ", name="East")
    assert created["code"] == "EAST-1"
    assert created["is_active"] is True
    assert_problem(
        await client.post(f"{API}/warehouses", json={"code": "East-1", "name": "Again"}), 409
    )


@pytest.mark.parametrize("code", ["A B", "-LEADING", "x" * 33, "É"])
async def test_invalid_warehouse_codes_are_422(client, code):
    response = await client.post(f"{API}/warehouses", json={"code": code, "name": "W"})
    assert error_locs(response) == [["body", "code"]]


async def test_warehouse_can_be_deactivated(client):
    created = await create(client, "/warehouses", code="OLD", name="Old")
    response = await client.patch(f"{API}/warehouses/{created['id']}", json={"is_active": False})
    assert response.json()["is_active"] is False


async def test_supplier_email_is_validated_and_lower_cased(client):
    bad = await client.post(f"{API}/suppliers", json={"name": "S", "email": "not-an-email"})
    assert error_locs(bad) == [["body", "email"]]
    good = await create(client, "/suppliers", name="S", email="Sales@Acme.Example")
    assert good["email"] == "sales@acme.example"

"""GraphQL answers what REST answers: the same lists for the same filters, page by page
with the same cursors, the same product for an id, and the same stock writes accepted
or refused, with the same effect on the ledger."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.graphql.helpers import (
    LISTINGS,
    MOVEMENT,
    PRODUCT,
    as_rest,
    assert_same_page,
    everything,
    gql,
    rest,
    rest_loc,
)
from tests.helpers import (
    API,
    assert_ledger_consistent,
    collect_pages,
    create,
    create_product,
    error_locs,
)


async def receive(client: httpx.AsyncClient, product: int, warehouse: int, quantity: int) -> None:
    body = {"product_id": product, "warehouse_id": warehouse, "kind": "receipt"}
    response = await client.post(f"{API}/stock/movements", json=body | {"quantity": quantity})
    assert response.status_code == 201, response.text


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, int]:
    """A small catalogue with a varied ledger: every filter below selects something."""
    main = (await create(client, "/warehouses", code="MAIN", name="Main"))["id"]
    east = (await create(client, "/warehouses", code="EAST", name="East"))["id"]
    old = (await create(client, "/warehouses", code="OLD", name="Old"))["id"]
    tools = (await create(client, "/categories", name="Tools"))["id"]
    paint = (await create(client, "/categories", name="Paint"))["id"]
    acme = (await create(client, "/suppliers", name="Acme"))["id"]
    other = (await create(client, "/suppliers", name="Other"))["id"]
    made = {}
    for sku, name, category, supplier, active, reorder in [
        ("BOLT-1", "Hex bolt", tools, acme, True, 5),
        ("BOLT-2", "Carriage bolt", tools, other, True, 0),
        ("NUT-1", "Nut", tools, acme, False, 2),
        ("PAINT-1", "White paint", paint, other, True, 10),
        ("PAINT-2", "Bolt-blue paint", paint, None, True, 1),
        ("SAW-1", "Saw", None, acme, True, 0),
        ("TAPE-1", "Tape", None, None, True, 3),
    ]:
        made[sku] = (
            await create_product(
                client,
                sku,
                name=name,
                category_id=category,
                supplier_id=supplier,
                is_active=active,
                reorder_level=reorder,
            )
        )["id"]
    bolt, paint_1 = made["BOLT-1"], made["PAINT-1"]
    await receive(client, bolt, main, 20)
    await receive(client, bolt, east, 3)
    await receive(client, paint_1, main, 4)
    await receive(client, made["BOLT-2"], main, 7)
    await receive(client, made["SAW-1"], old, 4)
    await receive(client, made["PAINT-2"], east, 6)
    for body in (
        {"product_id": bolt, "warehouse_id": main, "kind": "shipment", "quantity": 6},
        {"product_id": bolt, "warehouse_id": main, "kind": "adjustment", "quantity": -1},
        {"product_id": paint_1, "warehouse_id": main, "kind": "shipment", "quantity": 1},
    ):
        assert (await client.post(f"{API}/stock/movements", json=body)).status_code == 201
    for quantity in (4, 2):
        transfer = {
            "product_id": bolt,
            "from_warehouse_id": main,
            "to_warehouse_id": east,
            "quantity": quantity,
        }
        assert (await client.post(f"{API}/stock/transfers", json=transfer)).status_code == 201
    await client.patch(f"{API}/warehouses/{old}", json={"is_active": False})
    return made | {
        "main": main,
        "east": east,
        "old": old,
        "tools": tools,
        "paint": paint,
        "acme": acme,
        "other": other,
    }


def _filled(value: Any, world: dict[str, int]) -> Any:
    """``"@main"`` is the id of the entry ``world`` made as "main", as an ``ID`` string."""
    if isinstance(value, dict):
        return {k: _filled(v, world) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("@"):
        return str(world[value[1:]])
    return value


def rest_params(graphql_filter: dict[str, Any]) -> dict[str, Any]:
    """The REST query parameters that say what a GraphQL filter says."""
    params = {}
    for key, value in graphql_filter.items():
        name = re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
        if isinstance(value, bool):
            value = str(value).lower()
        elif name == "kind":
            value = value.lower()
        params[name] = value
    return params


async def pages_as_rest(
    client: httpx.AsyncClient, field: str, first: int, graphql_filter: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Follow a connection's ``endCursor`` to the end beside REST's list with the same limit.

    Each page must hold REST's items, as whole objects, with REST's ``next_cursor``
    as ``endCursor`` and as the cursor of the page's last edge. Returns REST's
    items, all of them, and the number of pages.
    """
    listing = LISTINGS[field]
    filtered = {} if graphql_filter is None else {"f": graphql_filter}
    params = rest_params(graphql_filter or {}) | {"limit": first}
    after: str | None = None
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        body = await gql(client, listing.query, first=first, after=after, **filtered)
        assert "errors" not in body, body
        page = body["data"][field]
        cursor = {"cursor": after} if after else {}
        by_rest = await client.get(f"{API}/{listing.path}", params=params | cursor)
        assert by_rest.status_code == 200, by_rest.text
        expected = by_rest.json()
        assert_same_page(page, expected)
        items += expected["items"]
        pages += 1
        if page["pageInfo"]["endCursor"] is None:
            return items, pages
        after = page["pageInfo"]["endCursor"]


PRODUCT_COUNT = 7
PRODUCTS = LISTINGS["products"].query
PRODUCT_FILTERS = [
    {},
    {"q": "bolt"},
    {"q": "PAINT"},
    {"q": "t-1"},
    {"categoryId": "@tools"},
    {"supplierId": "@acme"},
    {"isActive": False},
    {"isActive": True},
    {"belowReorder": True},
    {"belowReorder": False},
    {"categoryId": "@tools", "isActive": True, "belowReorder": False},
]


@pytest.mark.parametrize("flt", PRODUCT_FILTERS, ids=str)
async def test_products_page_by_page_as_rest(client, world, flt):
    graphql_filter = _filled(flt, world)
    items, pages = await pages_as_rest(client, "products", 2, graphql_filter)
    selected = await collect_pages(client, f"{API}/products", **rest_params(graphql_filter))
    assert items == selected
    assert pages == max(1, (len(selected) + 1) // 2)
    if flt:
        assert 0 < len(selected) < PRODUCT_COUNT, "the filter should select some, not all"


# One product by id or by SKU. The list beside it shows that a refused argument left
# the request's transaction usable (on PostgreSQL a NUL sent to the database would not).
LOOKUP = f"""query($id: ID, $sku: String) {{
  product(id: $id, sku: $sku) {{ {PRODUCT} }}
  products(first: 1) {{ edges {{ cursor }} }} }}"""


async def test_product_by_id_or_sku_is_rests_product(client, world):
    by_rest = await client.get(f"{API}/products/{world['BOLT-1']}")
    assert by_rest.status_code == 200
    # SKUs are matched upper-case and trimmed, as REST stores them.
    lookups: list[dict[str, Any]] = [
        {"id": str(world["BOLT-1"])},
        {"sku": "BOLT-1"},
        {"sku": " bolt-1 "},
    ]
    for variables in lookups:
        body = await gql(client, LOOKUP, **variables)
        assert "errors" not in body, body
        assert as_rest(body["data"]["product"]) == rest(by_rest.json())


@pytest.mark.parametrize("variables", [{"id": "99999"}, {"id": str(2**31 - 1)}, {"sku": "NOPE-1"}])
async def test_a_product_that_does_not_exist_is_null(client, world, variables):
    body = await gql(client, LOOKUP, **variables)
    assert "errors" not in body, body
    assert body["data"]["product"] is None
    if "id" in variables:
        assert (await client.get(f"{API}/products/{variables['id']}")).status_code == 404


def _refused(body: dict[str, Any]) -> dict[str, Any]:
    """The one error of a lookup whose arguments were refused, the rest of the answer intact."""
    assert body["data"]["product"] is None
    assert body["data"]["products"]["edges"], "the list beside it is still served"
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["product"], "BAD_USER_INPUT")
    ]
    error: dict[str, Any] = body["errors"][0]
    return error


@pytest.mark.parametrize(
    "product_id", ["abc", "0", "-1", "²", str(2**31), "99999999999999999999999"]
)
async def test_an_id_rest_refuses_is_bad_user_input(client, world, product_id):
    assert (await client.get(f"{API}/products/{product_id}")).status_code == 422
    assert _refused(await gql(client, LOOKUP, id=product_id))["message"].startswith("id: ")


@pytest.mark.parametrize(
    "sku",
    ["A\u0000B", "X" * 65, "", "   ", "A B", "É-1"],
    ids=["nul", "65", "empty", "blank", "space", "accent"],
)
async def test_a_sku_rest_refuses_is_bad_user_input(client, world, sku):
    created = await client.post(
        f"{API}/products", json={"sku": sku, "name": "New", "unit_price": "1.00"}
    )
    assert error_locs(created) == [["body", "sku"]]
    assert _refused(await gql(client, LOOKUP, sku=sku))["message"].startswith("sku: ")


@pytest.mark.parametrize(
    "variables", [{}, {"id": None, "sku": None}, {"id": "1", "sku": "BOLT-1"}], ids=str
)
async def test_product_takes_exactly_one_of_id_and_sku(client, world, variables):
    error = _refused(await gql(client, LOOKUP, **variables))
    assert error["message"] == "Give exactly one of id and sku."


LEVEL_COUNT = 6
LEVELS = LISTINGS["stockLevels"].query
LEVEL_FILTERS = [
    {},
    {"productId": "@BOLT-1"},
    {"warehouseId": "@east"},
    {"belowReorder": True},
    {"belowReorder": False},
    {"productId": "@BOLT-1", "warehouseId": "@main"},
]


@pytest.mark.parametrize("flt", LEVEL_FILTERS, ids=str)
async def test_stock_levels_page_by_page_as_rest(client, world, flt):
    graphql_filter = _filled(flt, world)
    items, pages = await pages_as_rest(client, "stockLevels", 2, graphql_filter)
    selected = await collect_pages(client, f"{API}/stock", **rest_params(graphql_filter))
    assert items == selected
    assert pages == max(1, (len(selected) + 1) // 2)
    if flt:
        assert 0 < len(selected) < LEVEL_COUNT, "the filter should select some, not all"
    else:
        assert len(selected) == LEVEL_COUNT


# Five of each, made out of order (lists sort by name, warehouses by code), with the
# optional fields both filled and left out; none clashes with `world`'s.
CATALOGUE: dict[str, list[dict[str, Any]]] = {
    "categories": [
        {"name": "Pumps", "description": "Water and oil"},
        {"name": "Adhesives"},
        {"name": "Valves", "description": None},
        {"name": "Electrical", "description": "Cables"},
        {"name": "Brushes"},
    ],
    "suppliers": [
        {"name": "Zenith", "email": "z@zenith.example"},
        {"name": "Acme Two", "phone": "+1 555 0100"},
        {"name": "Moreau"},
        {"name": "Bolt & Co", "email": "sales@bolt.example", "phone": "555"},
        {"name": "Kline"},
    ],
    "warehouses": [
        {"code": "WEST", "name": "West", "address": "1 Dock Road"},
        {"code": "SOUTH", "name": "South"},
        {"code": "DEPOT", "name": "Depot", "is_active": False},
        {"code": "ANNEX", "name": "Annex"},
        {"code": "NORTH", "name": "North", "address": "Pier 4"},
    ],
}


@pytest.mark.parametrize("field", list(CATALOGUE))
async def test_catalogue_lists_page_by_page_as_rest(client, field):
    made = [await create(client, f"/{field}", **entry) for entry in CATALOGUE[field]]
    items, pages = await pages_as_rest(client, field, 2)
    assert pages == 3
    key = "code" if field == "warehouses" else "name"
    assert [x[key] for x in items] == sorted(x[key] for x in made), "every entry, in order"
    assert sorted(items, key=lambda x: x["id"]) == sorted(made, key=lambda x: x["id"])


@pytest.mark.parametrize("field", list(LISTINGS))
async def test_every_edge_cursor_resumes_after_its_node_as_rests_cursor_does(client, world, field):
    """Not only ``endCursor``: ``after`` any edge's cursor is REST's page after that node."""
    for entry in CATALOGUE.get(field, []):
        await create(client, f"/{field}", **entry)
    listing = LISTINGS[field]
    edges = (await gql(client, listing.query, first=4))["data"][field]["edges"]
    assert len(edges) == 4
    for n, edge in enumerate(edges[:-1]):
        page = (await gql(client, listing.query, first=2, after=edge["cursor"]))["data"][field]
        assert page["edges"][0] == edges[n + 1]
        by_rest = await client.get(
            f"{API}/{listing.path}", params={"limit": 2, "cursor": edge["cursor"]}
        )
        assert by_rest.status_code == 200, by_rest.text
        expected = by_rest.json()
        assert [as_rest(e["node"]) for e in page["edges"]] == [rest(x) for x in expected["items"]]
        assert page["pageInfo"]["endCursor"] == expected["next_cursor"]


MOVEMENTS = LISTINGS["movements"].query


def _moment(ledger: list[dict[str, Any]], n: int, form: str) -> str:
    """The creation time of the ``n``-th oldest movement, written as ``form`` says."""
    moment = datetime.fromisoformat(ledger[-n]["created_at"]).astimezone(UTC)
    if form == "naive":
        return moment.replace(tzinfo=None).isoformat()
    if form == "+02:00":
        return moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    return moment.isoformat()


MOVEMENT_FILTERS: list[dict[str, Any]] = [
    {},
    {"productId": "@BOLT-1"},
    {"warehouseId": "@east"},
    {"kind": "SHIPMENT"},
    {"kind": "TRANSFER_OUT"},
    {"since": (5, "utc")},
    {"until": (5, "utc")},
    {"since": (3, "naive"), "until": (9, "naive")},
    {"since": (3, "+02:00"), "until": (9, "+02:00")},
    {"productId": "@BOLT-1", "warehouseId": "@main", "since": (2, "utc")},
]


@pytest.mark.parametrize("flt", MOVEMENT_FILTERS, ids=str)
async def test_movements_page_by_page_as_rest(client, world, flt):
    ledger = await collect_pages(client, f"{API}/stock/movements")
    graphql_filter = {
        k: _moment(ledger, *v) if isinstance(v, tuple) else v
        for k, v in _filled(flt, world).items()
    }
    items, _ = await pages_as_rest(client, "movements", 3, graphql_filter)
    selected = await collect_pages(client, f"{API}/stock/movements", **rest_params(graphql_filter))
    assert items == selected
    if flt:
        assert 0 < len(selected) < len(ledger), "the filter should select some, not all"


async def test_since_and_until_bound_the_ledger_as_documented(client, world):
    ledger = await collect_pages(client, f"{API}/stock/movements")
    since, until = _moment(ledger, 3, "naive"), _moment(ledger, 9, "+02:00")
    body = await gql(client, MOVEMENTS, f={"since": since, "until": until}, first=50)
    got = [int(e["node"]["id"]) for e in body["data"]["movements"]["edges"]]
    # Newest first: from the 3rd oldest (included) up to the 9th oldest (excluded).
    assert got == [m["id"] for m in ledger[-8:-2]]


REFUSED_FILTERS = [
    ("stock/movements", {"since": "0001-01-01T00:00:00+01:00"}),
    ("stock/movements", {"until": "0001-01-01T00:30:00+05:00"}),
    ("stock/movements", {"productId": "abc"}),
    ("stock/movements", {"warehouseId": "0"}),
    ("stock", {"productId": "²"}),
    ("products", {"q": "a\u0000b"}),
    ("products", {"q": "x" * 201}),
    ("products", {"categoryId": str(2**31)}),
]


@pytest.mark.parametrize(
    ("path", "flt"), REFUSED_FILTERS, ids=[str(f)[:30] for _, f in REFUSED_FILTERS]
)
async def test_filters_rest_refuses_are_bad_user_input(client, world, path, flt):
    by_rest = await client.get(f"{API}/{path}", params=rest_params(flt))
    assert by_rest.status_code == 422
    document = {"stock/movements": MOVEMENTS, "stock": LEVELS, "products": PRODUCTS}[path]
    body = await gql(client, document, f=flt)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert (await gql(client, document, f={}))["data"], "the same query without the bad filter"


# The stock writes: each input goes to both fronts on the same state.

RECORD = f"""mutation($input: RecordMovementInput!) {{ result: recordMovement(input: $input) {{
  __typename
  ... on Movement {{ {MOVEMENT} }}
  ... on InsufficientStock {{ message available requested }}
  ... on NotFound {{ message }}
  ... on Conflict {{ message }}
  ... on ValidationFailed {{ message errors {{ loc msg type }} }}
}} }}"""
TRANSFER = f"""mutation($input: TransferStockInput!) {{ result: transferStock(input: $input) {{
  __typename
  ... on Transfer {{ id productId fromWarehouseId toWarehouseId quantity reference createdAt
                    movements {{ {MOVEMENT} }} }}
  ... on InsufficientStock {{ message available requested }}
  ... on NotFound {{ message }}
  ... on Conflict {{ message }}
  ... on ValidationFailed {{ message errors {{ loc msg type }} }}
}} }}"""
STATUS = {
    "Movement": 201,
    "Transfer": 201,
    "InsufficientStock": 409,
    "Conflict": 409,
    "NotFound": 404,
    "ValidationFailed": 422,
}


def rest_body(graphql_input: dict[str, Any]) -> dict[str, Any]:
    body = rest_params(graphql_input)
    for key, value in body.items():
        if key.endswith("_id") and isinstance(value, str) and value.isdigit():
            body[key] = int(value)
    return body


# Stock on hand in `world`: BOLT-1 7 in MAIN and 9 in EAST, SAW-1 4 in the inactive OLD;
# NUT-1 is inactive. An accepted input goes through twice (GraphQL, then REST), so it
# takes at most half of what is there.
BOLT_MAIN = {"productId": "@BOLT-1", "warehouseId": "@main"}
MOVEMENT_CASES = [
    ({**BOLT_MAIN, "kind": "RECEIPT", "quantity": 3, "reference": "PO-9"}, "Movement"),
    ({**BOLT_MAIN, "kind": "SHIPMENT", "quantity": 3, "note": "half"}, "Movement"),
    ({**BOLT_MAIN, "kind": "ADJUSTMENT", "quantity": -2}, "Movement"),
    ({"productId": "@SAW-1", "warehouseId": "@old", "kind": "SHIPMENT", "quantity": 2}, "Movement"),
    ({**BOLT_MAIN, "kind": "SHIPMENT", "quantity": 8}, "InsufficientStock"),
    ({**BOLT_MAIN, "kind": "ADJUSTMENT", "quantity": -8}, "InsufficientStock"),
    ({**BOLT_MAIN, "warehouseId": "@old", "kind": "SHIPMENT", "quantity": 1}, "InsufficientStock"),
    ({**BOLT_MAIN, "kind": "ADJUSTMENT", "quantity": 0}, "ValidationFailed"),
    ({**BOLT_MAIN, "kind": "RECEIPT", "quantity": 0}, "ValidationFailed"),
    ({**BOLT_MAIN, "kind": "SHIPMENT", "quantity": -1}, "ValidationFailed"),
    ({**BOLT_MAIN, "kind": "RECEIPT", "quantity": 1, "reference": "x" * 101}, "ValidationFailed"),
    ({**BOLT_MAIN, "productId": "abc", "kind": "RECEIPT", "quantity": 1}, "ValidationFailed"),
    ({**BOLT_MAIN, "productId": "99999", "kind": "RECEIPT", "quantity": 1}, "NotFound"),
    ({**BOLT_MAIN, "warehouseId": "99999", "kind": "RECEIPT", "quantity": 1}, "NotFound"),
    ({**BOLT_MAIN, "warehouseId": "@old", "kind": "RECEIPT", "quantity": 1}, "Conflict"),
    ({**BOLT_MAIN, "productId": "@NUT-1", "kind": "RECEIPT", "quantity": 1}, "Conflict"),
]
BOLT_OUT = {"productId": "@BOLT-1", "fromWarehouseId": "@main", "toWarehouseId": "@east"}
TRANSFER_CASES = [
    ({**BOLT_OUT, "quantity": 3, "reference": "T-1"}, "Transfer"),
    ({"productId": "@SAW-1", "fromWarehouseId": "@old", "toWarehouseId": "@main", "quantity": 1},
     "Transfer"),
    ({**BOLT_OUT, "quantity": 8}, "InsufficientStock"),
    ({**BOLT_OUT, "quantity": 0}, "ValidationFailed"),
    ({**BOLT_OUT, "toWarehouseId": "@main", "quantity": 1}, "ValidationFailed"),
    ({**BOLT_OUT, "productId": "99999", "quantity": 1}, "NotFound"),
    ({**BOLT_OUT, "toWarehouseId": "99999", "quantity": 1}, "NotFound"),
    ({**BOLT_OUT, "toWarehouseId": "@old", "quantity": 1}, "Conflict"),
    ({**BOLT_OUT, "productId": "@NUT-1", "quantity": 1}, "Conflict"),
]  # fmt: skip
WRITE_CASES = [(RECORD, "movements", i, t) for i, t in MOVEMENT_CASES] + [
    (TRANSFER, "transfers", i, t) for i, t in TRANSFER_CASES
]


def _levels(snapshot: dict[str, list[dict[str, Any]]]) -> dict[tuple[int, int], int]:
    return {(x["product_id"], x["warehouse_id"]): x["quantity"] for x in snapshot["stock"]}


def _change(before: dict[Any, int], after: dict[Any, int]) -> dict[Any, int]:
    """How much each level moved between two snapshots."""
    moved = {k: after.get(k, 0) - before.get(k, 0) for k in before | after}
    return {k: v for k, v in moved.items() if v}


def _written(result: dict[str, Any]) -> dict[str, Any]:
    """What a write recorded, without what differs between two runs (ids, times, balances)."""
    out = as_rest(result)
    for key in ("__typename", "id", "created_at", "balance"):
        out.pop(key, None)
    if "movements" in out:
        out["movements"] = [_written(m) for m in out["movements"]]
    out.pop("transfer_id", None)
    return out


@pytest.mark.parametrize(
    ("document", "path", "graphql_input", "outcome"),
    WRITE_CASES,
    ids=[f"{p}-{o}-{n}" for n, (_, p, _, o) in enumerate(WRITE_CASES)],
)
async def test_stock_writes_are_accepted_or_refused_as_by_rest(
    client, engine, world, document, path, graphql_input, outcome
):
    graphql_input = _filled(graphql_input, world)
    before = await everything(client)
    body = await gql(client, document, input=graphql_input)
    by_graphql = body["data"]["result"]
    after_graphql = await everything(client)
    response = await client.post(f"{API}/stock/{path}", json=rest_body(graphql_input))
    after_rest = await everything(client)

    assert by_graphql["__typename"] == outcome, by_graphql
    assert response.status_code == STATUS[outcome], response.text
    by_rest = response.json()
    if outcome in ("Movement", "Transfer"):
        assert _written(by_graphql) == _written(by_rest)
        change = _change(_levels(before), _levels(after_graphql))
        assert change
        assert change == _change(_levels(after_graphql), _levels(after_rest))
        added = len(after_graphql["stock/movements"]) - len(before["stock/movements"])
        assert added == (2 if outcome == "Transfer" else 1)
    else:
        assert after_graphql == before
        assert after_rest == before
        if outcome != "ValidationFailed":  # the summary line names the front's own terms
            assert by_graphql["message"] == by_rest["detail"]
        if outcome == "InsufficientStock":
            assert (by_graphql["available"], by_graphql["requested"]) == (
                by_rest["available"],
                by_rest["requested"],
            )
        if outcome == "ValidationFailed":
            assert [(e["loc"], e["msg"]) for e in by_graphql["errors"]] == [
                (rest_loc(e["loc"]), e["msg"]) for e in by_rest["errors"]
            ]
    await assert_ledger_consistent(engine)

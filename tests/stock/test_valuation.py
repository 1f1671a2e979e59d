"""Stock valuation at weighted average cost: receipts average their cost in, shipments and
adjustments leave it, transfers carry it; the worth now and as of any past moment, the cost
each ledger entry brought in, and the same answers through GraphQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from inventory.models import Role
from tests.conftest import Account
from tests.graphql.helpers import MOVEMENT, as_rest, gql, rest, rest_loc
from tests.helpers import API, assert_problem, collect_pages, create, create_product, error_locs

VALUATION = f"{API}/stock/valuation"
MOVEMENTS = f"{API}/stock/movements"
GQL_VALUATION = """
query($w: ID, $p: ID, $asOf: DateTime) {
  stockValuation(warehouseId: $w, productId: $p, asOf: $asOf) {
    lines { productId warehouseId quantity averageCost value } total
  }
}"""
RECORD = f"""
mutation($input: RecordMovementInput!) {{
  recordMovement(input: $input) {{
    __typename
    ... on Movement {{ {MOVEMENT} }}
    ... on ValidationFailed {{ message errors {{ loc msg type }} }}
  }}
}}"""


async def move(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(MOVEMENTS, json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def worth(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(VALUATION, params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def line(product: int, warehouse: int, quantity: int, cost: str, value: str) -> dict[str, Any]:
    return {
        "product_id": product,
        "warehouse_id": warehouse,
        "quantity": quantity,
        "average_cost": cost,
        "value": value,
    }


@pytest.fixture
async def stock(client: httpx.AsyncClient) -> dict[str, int]:
    main = await create(client, "/warehouses", code="MAIN", name="Main")
    east = await create(client, "/warehouses", code="EAST", name="East")
    bolt = await create_product(client, "BOLT-1")
    nut = await create_product(client, "NUT-1")
    return {"main": main["id"], "east": east["id"], "bolt": bolt["id"], "nut": nut["id"]}


async def test_average_cost_through_receipts_a_shipment_and_a_transfer(client, stock):
    p, main, east = stock["bolt"], stock["main"], stock["east"]
    assert await worth(client) == {"lines": [], "total": "0.00"}
    steps: list[tuple[str, dict[str, Any]]] = []

    first = await move(
        client, product_id=p, warehouse_id=main, kind="receipt", quantity=10, unit_cost="2.00"
    )
    assert first["unit_cost"] == "2.0000"
    steps.append((first["created_at"], await worth(client)))
    assert steps[-1][1] == {"lines": [line(p, main, 10, "2.0000", "20.00")], "total": "20.00"}

    second = await move(
        client, product_id=p, warehouse_id=main, kind="receipt", quantity=30, unit_cost=4
    )
    steps.append((second["created_at"], await worth(client)))
    assert steps[-1][1] == {"lines": [line(p, main, 40, "3.5000", "140.00")], "total": "140.00"}

    shipped = await move(client, product_id=p, warehouse_id=main, kind="shipment", quantity=20)
    assert shipped["unit_cost"] is None
    steps.append((shipped["created_at"], await worth(client)))
    assert steps[-1][1] == {"lines": [line(p, main, 20, "3.5000", "70.00")], "total": "70.00"}

    response = await client.post(
        f"{API}/stock/transfers",
        json={"product_id": p, "from_warehouse_id": main, "to_warehouse_id": east, "quantity": 5},
    )
    assert response.status_code == 201, response.text
    transfer = response.json()
    assert [leg["unit_cost"] for leg in transfer["movements"]] == ["3.5000", "3.5000"]
    steps.append((transfer["created_at"], await worth(client)))
    # 17.50 of value moved: 52.50 stays, 17.50 arrives, the total is unchanged.
    assert steps[-1][1] == {
        "lines": [line(p, main, 15, "3.5000", "52.50"), line(p, east, 5, "3.5000", "17.50")],
        "total": "70.00",
    }

    # The ledger shows what each entry brought in at, newest first.
    ledger = await collect_pages(client, MOVEMENTS)
    assert [(m["kind"], m["unit_cost"]) for m in ledger] == [
        ("transfer_in", "3.5000"),
        ("transfer_out", "3.5000"),
        ("shipment", None),
        ("receipt", "4.0000"),
        ("receipt", "2.0000"),
    ]

    # As of each step, exactly that step's figures; before the first, nothing.
    for moment, figures in steps:
        assert await worth(client, as_of=moment) == figures
    before = datetime.fromisoformat(first["created_at"]) - timedelta(microseconds=1)
    assert await worth(client, as_of=before.isoformat()) == {"lines": [], "total": "0.00"}
    # Narrowed to a warehouse or a product, at a moment too.
    assert await worth(client, warehouse_id=east) == {
        "lines": [line(p, east, 5, "3.5000", "17.50")],
        "total": "17.50",
    }
    assert await worth(client, warehouse_id=east, as_of=steps[2][0]) == {
        "lines": [],
        "total": "0.00",
    }
    assert await worth(client, product_id=stock["nut"]) == {"lines": [], "total": "0.00"}


async def test_a_transfer_into_stock_at_another_cost_averages_the_two(client, stock):
    p, main, east = stock["bolt"], stock["main"], stock["east"]
    await move(
        client, product_id=p, warehouse_id=main, kind="receipt", quantity=20, unit_cost="3.5"
    )
    await move(client, product_id=p, warehouse_id=east, kind="receipt", quantity=10, unit_cost="1")
    response = await client.post(
        f"{API}/stock/transfers",
        json={"product_id": p, "from_warehouse_id": main, "to_warehouse_id": east, "quantity": 5},
    )
    assert response.status_code == 201, response.text
    # (10 * 1.00 + 5 * 3.50) / 15 = 1.8333 (to four places); 15 * 1.8333 = 27.4995 → 27.50.
    assert await worth(client) == {
        "lines": [line(p, main, 15, "3.5000", "52.50"), line(p, east, 15, "1.8333", "27.50")],
        "total": "80.00",
    }


async def test_movements_without_a_cost_keep_the_average(client, stock):
    p, n, main = stock["bolt"], stock["nut"], stock["main"]
    await move(client, product_id=p, warehouse_id=main, kind="receipt", quantity=10, unit_cost="2")
    plain = await move(client, product_id=p, warehouse_id=main, kind="receipt", quantity=10)
    assert plain["unit_cost"] is None
    await move(client, product_id=p, warehouse_id=main, kind="adjustment", quantity=-5)
    # A product received without any cost is stock worth 0, still listed.
    await move(client, product_id=n, warehouse_id=main, kind="receipt", quantity=3)
    assert await worth(client) == {
        "lines": [line(p, main, 15, "2.0000", "30.00"), line(n, main, 3, "0.0000", "0.00")],
        "total": "30.00",
    }
    # A level emptied is worth nothing and is left out; refilled, its average is still there.
    await move(client, product_id=n, warehouse_id=main, kind="shipment", quantity=3)
    await move(client, product_id=p, warehouse_id=main, kind="shipment", quantity=15)
    assert await worth(client) == {"lines": [], "total": "0.00"}
    await move(client, product_id=p, warehouse_id=main, kind="receipt", quantity=1)
    assert await worth(client) == {"lines": [line(p, main, 1, "2.0000", "2.00")], "total": "2.00"}


@pytest.mark.parametrize(
    ("kind", "quantity", "unit_cost"),
    [
        ("shipment", 1, "1.00"),
        ("adjustment", 1, "1.00"),
        ("receipt", 1, "-0.01"),
        ("receipt", 1, "1.00001"),
        ("receipt", 1, "cheap"),
        ("receipt", 1, "NaN"),
        ("receipt", 1, True),
    ],
)
async def test_bad_costs_are_refused_and_nothing_is_recorded(
    client, stock, kind, quantity, unit_cost
):
    body = {
        "product_id": stock["bolt"],
        "warehouse_id": stock["main"],
        "kind": kind,
        "quantity": quantity,
        "unit_cost": unit_cost,
    }
    response = await client.post(MOVEMENTS, json=body)
    assert error_locs(response) == [["body", "unit_cost"]]
    assert await collect_pages(client, MOVEMENTS) == []


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"as_of": "yesterday"}, ["query", "as_of"]),
        ({"as_of": "2026-13-01T00:00:00Z"}, ["query", "as_of"]),
        ({"warehouse_id": "0"}, ["query", "warehouse_id"]),
        ({"product_id": "x"}, ["query", "product_id"]),
    ],
)
async def test_bad_parameters_are_refused(client, params, loc):
    response = await client.get(VALUATION, params=params)
    assert error_locs(response) == [loc]


async def test_only_managers_may_value_stock(client, stock, accounts: dict[Role, Account]):
    await move(
        client,
        product_id=stock["bolt"],
        warehouse_id=stock["main"],
        kind="receipt",
        quantity=2,
        unit_cost="1.25",
    )
    for role in Role:
        response = await client.get(VALUATION, headers=accounts[role].headers)
        if role.allows(Role.manager):
            assert response.json()["total"] == "2.50"
        else:
            assert_problem(response, 403)


async def test_graphql_answers_what_rest_does(client, stock):
    p, main, east = stock["bolt"], stock["main"], stock["east"]
    body = await gql(
        client,
        RECORD,
        input={
            "productId": str(p),
            "warehouseId": str(main),
            "kind": "RECEIPT",
            "quantity": 10,
            "unitCost": "2.5",
        },
    )
    made = body["data"]["recordMovement"]
    assert made["__typename"] == "Movement", body
    assert made["unitCost"] == "2.5000"
    [entry] = (await client.get(MOVEMENTS)).json()["items"]
    assert as_rest({k: v for k, v in made.items() if k != "__typename"}) == rest(entry)
    # A cost on anything but a receipt is refused where REST refuses it.
    body = await gql(
        client,
        RECORD,
        input={
            "productId": str(p),
            "warehouseId": str(main),
            "kind": "SHIPMENT",
            "quantity": 1,
            "unitCost": "2.5",
        },
    )
    refused = body["data"]["recordMovement"]
    assert refused["__typename"] == "ValidationFailed"
    by_rest = await client.post(
        MOVEMENTS,
        json={
            "product_id": p,
            "warehouse_id": main,
            "kind": "shipment",
            "quantity": 1,
            "unit_cost": "2.5",
        },
    )
    assert [e["loc"] for e in refused["errors"]] == [["input", "unitCost"]]
    assert [e["loc"] for e in refused["errors"]] == [rest_loc(x) for x in error_locs(by_rest)]

    transfer = await client.post(
        f"{API}/stock/transfers",
        json={"product_id": p, "from_warehouse_id": main, "to_warehouse_id": east, "quantity": 4},
    )
    moment = transfer.json()["created_at"]
    for variables, params in [
        ({}, {}),
        ({"w": str(east)}, {"warehouse_id": east}),
        ({"p": str(p), "asOf": moment}, {"product_id": p, "as_of": moment}),
        ({"asOf": "2000-01-01T00:00:00"}, {"as_of": "2000-01-01T00:00:00"}),
    ]:
        body = await gql(client, GQL_VALUATION, **variables)
        answer = body["data"]["stockValuation"]
        expected = await worth(client, **params)
        assert [as_rest(x) for x in answer["lines"]] == expected["lines"]
        assert answer["total"] == expected["total"]
    assert answer["lines"] == []

    body = await gql(client, GQL_VALUATION, w="0")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"

"""Who may call each GraphQL query and mutation: the documented roles, as REST enforces them.

Every mutation is tried by nobody, by a bad token and by each role, on a fresh
database where the call would succeed. A caller who may not gets a GraphQL
error with the code and nothing is written; a caller who may gets the success
type and the change is there. Every query needs a viewer's token, and no more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from inventory.models import Role
from tests.conftest import Account
from tests.graphql.helpers import LISTINGS, RESERVATIONS, everything, gql
from tests.helpers import API, create, create_product


@dataclass(frozen=True)
class Call:
    mutation: str
    args: str
    success: str
    variables: dict[str, Any]
    required: Role

    @property
    def document(self) -> str:
        params = ", ".join(f"${name}: {kind}" for name, kind in self._params())
        passed = ", ".join(f"{name}: ${name}" for name, _ in self._params())
        return (
            f"mutation({params}) {{ {self.mutation}({passed}) "
            "{ __typename ... on NotFound { message } ... on Conflict { message } "
            "... on ValidationFailed { message } } }"
        )

    def _params(self) -> list[tuple[str, str]]:
        return [tuple(part.split(":")) for part in self.args.split()]  # type: ignore[misc]


# Placeholders such as "@product" are replaced by the id of the entry the fixture made.
CALLS = [
    Call("recordMovement", "input:RecordMovementInput!", "Movement",
         {"input": {"productId": "@product", "warehouseId": "@main", "kind": "RECEIPT",
                    "quantity": 1}}, Role.clerk),
    Call("transferStock", "input:TransferStockInput!", "Transfer",
         {"input": {"productId": "@product", "fromWarehouseId": "@main",
                    "toWarehouseId": "@east", "quantity": 1}}, Role.clerk),
    Call("createCategory", "input:CreateCategoryInput!", "Category",
         {"input": {"name": "New"}}, Role.manager),
    Call("updateCategory", "id:ID! input:UpdateCategoryInput!", "Category",
         {"id": "@category", "input": {"name": "Renamed"}}, Role.manager),
    Call("deleteCategory", "id:ID!", "Deleted", {"id": "@category"}, Role.manager),
    Call("createSupplier", "input:CreateSupplierInput!", "Supplier",
         {"input": {"name": "New"}}, Role.manager),
    Call("updateSupplier", "id:ID! input:UpdateSupplierInput!", "Supplier",
         {"id": "@supplier", "input": {"phone": "555"}}, Role.manager),
    Call("deleteSupplier", "id:ID!", "Deleted", {"id": "@supplier"}, Role.manager),
    Call("createWarehouse", "input:CreateWarehouseInput!", "Warehouse",
         {"input": {"code": "NEW", "name": "New"}}, Role.manager),
    Call("updateWarehouse", "id:ID! input:UpdateWarehouseInput!", "Warehouse",
         {"id": "@spare_warehouse", "input": {"isActive": False}}, Role.manager),
    Call("deleteWarehouse", "id:ID!", "Deleted", {"id": "@spare_warehouse"}, Role.manager),
    Call("createProduct", "input:CreateProductInput!", "Product",
         {"input": {"sku": "NEW-1", "name": "New", "unitPrice": "2.50"}}, Role.manager),
    Call("updateProduct", "id:ID! input:UpdateProductInput!", "Product",
         {"id": "@product", "input": {"unitPrice": "9.99"}}, Role.manager),
    Call("deleteProduct", "id:ID!", "Deleted", {"id": "@spare_product"}, Role.manager),
    Call("openCount", "input:OpenCountInput!", "Count",
         {"input": {"warehouseId": "@main"}}, Role.clerk),
    Call("recordCount", "id:ID! productId:ID! input:RecordCountInput!", "CountLine",
         {"id": "@count", "productId": "@product", "input": {"counted": 4}}, Role.clerk),
    Call("finishCount", "id:ID!", "FinishedCount", {"id": "@count"}, Role.manager),
    Call("cancelCount", "id:ID!", "Count", {"id": "@count"}, Role.clerk),
    Call("createReservation", "input:CreateReservationInput!", "Reservation",
         {"input": {"lines": [{"productId": "@product", "quantity": 1}]}}, Role.clerk),
    Call("confirmReservation", "id:ID!", "Reservation", {"id": "@reservation"}, Role.clerk),
    Call("releaseReservation", "id:ID!", "Reservation", {"id": "@reservation"}, Role.clerk),
    Call("createPurchaseOrder", "input:CreatePurchaseOrderInput!", "PurchaseOrder",
         {"input": {"supplierId": "@supplier", "warehouseId": "@main",
                    "lines": [{"productId": "@product", "quantity": 3, "unitCost": "1.5"}]}},
         Role.manager),
    Call("updatePurchaseOrder", "id:ID! input:UpdatePurchaseOrderInput!", "PurchaseOrder",
         {"id": "@draft_order", "input": {"reference": "Q-2"}}, Role.manager),
    Call("placePurchaseOrder", "id:ID!", "PurchaseOrder", {"id": "@draft_order"}, Role.manager),
    Call("receivePurchaseOrder", "id:ID! input:ReceivePurchaseOrderInput!", "PurchaseOrder",
         {"id": "@placed_order", "input": {"lines": [{"lineId": "@placed_line", "quantity": 1}]}},
         Role.clerk),
    Call("cancelPurchaseOrder", "id:ID!", "PurchaseOrder", {"id": "@draft_order"}, Role.manager),
    Call("createSalesOrder", "input:CreateSalesOrderInput!", "SalesOrder",
         {"input": {"lines": [{"productId": "@product", "warehouseId": "@main", "quantity": 1}]}},
         Role.clerk),
    Call("confirmSalesOrder", "id:ID!", "SalesOrder", {"id": "@draft_sales_order"}, Role.clerk),
    Call("allocateSalesOrder", "id:ID!", "SalesOrder", {"id": "@sales_order"}, Role.clerk),
    Call("shipSalesOrder", "id:ID! input:ShipSalesOrderInput!", "SalesOrder",
         {"id": "@sales_order",
          "input": {"lines": [{"lineId": "@sales_order_line", "quantity": 1}]}}, Role.clerk),
    Call("cancelSalesOrder", "id:ID!", "SalesOrder", {"id": "@sales_order"}, Role.clerk),
]  # fmt: skip

CALLERS = ["nobody", "bad token", *Role]


@pytest.fixture
async def ids(client: httpx.AsyncClient) -> dict[str, str]:
    """A catalogue where every call above would succeed, with stock to move."""
    main = await create(client, "/warehouses", code="MAIN", name="Main")
    east = await create(client, "/warehouses", code="EAST", name="East")
    spare_warehouse = await create(client, "/warehouses", code="SPARE", name="Spare")
    category = await create(client, "/categories", name="Tools")
    supplier = await create(client, "/suppliers", name="Acme")
    product = await create_product(client, "P-1")
    spare_product = await create_product(client, "P-2")
    received = await client.post(
        f"{API}/stock/movements",
        json={
            "product_id": product["id"],
            "warehouse_id": main["id"],
            "kind": "receipt",
            "quantity": 5,
        },
    )
    assert received.status_code == 201
    count = await create(client, "/counts", warehouse_id=main["id"])
    reservation = await client.post(
        f"{API}/reservations", json={"lines": [{"product_id": product["id"], "quantity": 1}]}
    )
    assert reservation.status_code == 201, reservation.text
    # Their own supplier: the one above is deleted by deleteSupplier.
    vendor = await create(client, "/suppliers", name="Orders Ltd")
    order = {
        "supplier_id": vendor["id"],
        "warehouse_id": main["id"],
        "lines": [{"product_id": product["id"], "quantity": 2, "unit_cost": "1"}],
    }
    draft_order = await create(client, "/purchase-orders", **order)
    placed_order = await create(client, "/purchase-orders", **order)
    placed = await client.post(f"{API}/purchase-orders/{placed_order['id']}/place")
    assert placed.status_code == 200, placed.text
    # 4 of the 5 units are free: the order allocates them, backorders 6, and then 2
    # arrive for allocateSalesOrder to take.
    sales_order = await create(
        client,
        "/sales-orders",
        lines=[{"product_id": product["id"], "warehouse_id": main["id"], "quantity": 10}],
    )
    confirmed = await client.post(f"{API}/sales-orders/{sales_order['id']}/confirm")
    assert confirmed.json()["lines"][0]["allocated"] == 4, confirmed.text
    received = await client.post(
        f"{API}/stock/movements",
        json={
            "product_id": product["id"],
            "warehouse_id": main["id"],
            "kind": "receipt",
            "quantity": 2,
        },
    )
    assert received.status_code == 201
    draft_sales_order = await create(
        client,
        "/sales-orders",
        lines=[{"product_id": product["id"], "warehouse_id": main["id"], "quantity": 1}],
    )
    made = {
        "draft_order": draft_order,
        "placed_order": placed_order,
        "placed_line": placed_order["lines"][0],
        "count": count,
        "main": main,
        "east": east,
        "spare_warehouse": spare_warehouse,
        "category": category,
        "supplier": supplier,
        "product": product,
        "spare_product": spare_product,
        "reservation": reservation.json(),
        "sales_order": sales_order,
        "sales_order_line": sales_order["lines"][0],
        "draft_sales_order": draft_sales_order,
    }
    return {name: str(entry["id"]) for name, entry in made.items()}


def _filled(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, ids) for v in value]
    if isinstance(value, str) and value.startswith("@"):
        return ids[value[1:]]
    return value


def _headers(caller: Role | str, accounts: dict[Role, Account]) -> dict[str, str]:
    if caller == "nobody":
        return {}
    if caller == "bad token":
        return {"Authorization": "Bearer not.a.jwt"}
    assert isinstance(caller, Role)
    return accounts[caller].headers


@pytest.mark.parametrize("caller", CALLERS, ids=str)
@pytest.mark.parametrize("call", CALLS, ids=[c.mutation for c in CALLS])
async def test_each_mutation_is_allowed_from_its_role_up(
    anonymous, client, accounts, ids, call, caller
):
    before = await everything(client)
    body = await gql(
        anonymous, call.document, _headers(caller, accounts), **_filled(call.variables, ids)
    )
    after = await everything(client)

    if isinstance(caller, Role) and caller.allows(call.required):
        assert "errors" not in body, body
        assert body["data"][call.mutation]["__typename"] == call.success, body
        assert after != before
        return
    expected = "FORBIDDEN" if isinstance(caller, Role) else "UNAUTHENTICATED"
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == [expected]
    assert body["errors"][0]["path"] == [call.mutation]
    assert after == before


async def test_every_mutation_in_the_schema_is_checked(client):
    """A mutation added later without a row above fails here."""
    body = await gql(client, "{ __schema { mutationType { fields { name } } } }")
    names = [field["name"] for field in body["data"]["__schema"]["mutationType"]["fields"]]
    assert sorted(names) == sorted(call.mutation for call in CALLS)


QUERIES = {
    "me": "{ me { email } }",
    "product": '{ product(sku: "P-1") { sku } }',
    "count": "query($id: ID!) { count(id: $id) { status } }",
    "counts": "{ counts { edges { node { id } } } }",
    "reservation": "query($id: ID!) { reservation(id: $id) { status } }",
    "salesOrder": "query($id: ID!) { salesOrder(id: $id) { status } }",
    "salesOrders": "{ salesOrders { edges { node { id } } } }",
    **{field: listing.query for field, listing in LISTINGS.items()},
    RESERVATIONS.field: RESERVATIONS.query,
    "purchaseOrder": "query($id: ID!) { purchaseOrder(id: $id) { status } }",
    "purchaseOrders": "{ purchaseOrders { edges { node { number } } } }",
}

QUERY_VARIABLES = {
    "count": {"id": "@count"},
    "reservation": {"id": "@reservation"},
    "purchaseOrder": {"id": "@draft_order"},
    "salesOrder": {"id": "@sales_order"},
}


@pytest.mark.parametrize("caller", ["nobody", "bad token", Role.viewer], ids=str)
@pytest.mark.parametrize("field", list(QUERIES))
async def test_each_query_needs_a_viewers_token(anonymous, accounts, ids, field, caller):
    variables = _filled(QUERY_VARIABLES.get(field, {}), ids)
    body = await gql(anonymous, QUERIES[field], _headers(caller, accounts), **variables)
    if caller == Role.viewer:
        assert "errors" not in body, body
        answer = body["data"][field]
        assert answer.get("edges", answer), "something from the fixture's catalogue"
        return
    assert body["data"] in (None, {field: None})  # null bubbles up from non-null fields
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        ([field], "UNAUTHENTICATED")
    ]


MANAGER_QUERIES = {
    "stockValuation": "{ stockValuation { lines { productId value } total } }",
}
"""Reads a viewer may not make: what the stock is worth is for managers."""


@pytest.mark.parametrize("caller", CALLERS, ids=str)
@pytest.mark.parametrize("field", list(MANAGER_QUERIES))
async def test_each_managers_query_needs_a_managers_token(anonymous, accounts, ids, field, caller):
    body = await gql(anonymous, MANAGER_QUERIES[field], _headers(caller, accounts))
    if isinstance(caller, Role) and caller.allows(Role.manager):
        assert "errors" not in body, body
        assert body["data"][field]["lines"], "something from the fixture's stock"
        return
    expected = "FORBIDDEN" if isinstance(caller, Role) else "UNAUTHENTICATED"
    assert body["data"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [([field], expected)]


async def test_every_query_in_the_schema_is_checked(client):
    """A query added later without a row above fails here."""
    body = await gql(client, "{ __schema { queryType { fields { name } } } }")
    names = [field["name"] for field in body["data"]["__schema"]["queryType"]["fields"]]
    assert sorted(names) == sorted([*QUERIES, *MANAGER_QUERIES])

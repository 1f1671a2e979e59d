"""Purchase orders in GraphQL: the REST routes' reads and writes, through the same service.

Input is validated by REST's schemas and list filter, so GraphQL refuses
exactly what REST refuses; a refusal is a member of the result union
(``PurchaseOrderError``, see ``graphql_schema.errors``).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.permission import BasePermission

from graphql_schema import types
from graphql_schema.context import ContextInfo
from graphql_schema.errors import PurchaseOrderError
from graphql_schema.inputs import UNSET, as_filter, parse_id, sent
from graphql_schema.permissions import ClerkRequired, ManagerRequired, ViewerRequired
from graphql_schema.queries import After, First, page_size
from inventory.errors import NotFound
from inventory.kit.money import cost_text
from inventory.orders import filters
from inventory.purchase_orders import service
from inventory.purchase_orders.schemas import (
    PurchaseOrderCreate,
    PurchaseOrderReceive,
    PurchaseOrderUpdate,
)
from inventory.purchase_orders.service import PurchaseOrderState

CLERK: list[type[BasePermission]] = [ClerkRequired]
MANAGER: list[type[BasePermission]] = [ManagerRequired]
VIEWER: list[type[BasePermission]] = [ViewerRequired]


@strawberry.enum(description="REST's purchase order status")
class PurchaseOrderStatus(Enum):
    DRAFT = "draft"
    PLACED = "placed"
    PARTIALLY_RECEIVED = "partially_received"
    RECEIVED = "received"
    CANCELLED = "cancelled"


@strawberry.type
class PurchaseOrderLine:
    id: strawberry.ID
    product_id: strawberry.ID
    quantity: int
    unit_cost: str = strawberry.field(description="Decimal with four places, as a string")
    received: int = strawberry.field(description="Units received so far")
    open: int = strawberry.field(
        description="Units still to come: quantity - received, 0 once the order is cancelled"
    )

    @strawberry.field
    async def product(self, info: ContextInfo) -> types.Product | None:
        row = await info.context.loaders.product.load(int(self.product_id))
        return types.Product.of(row) if row else None


@strawberry.type(description="Stock ordered from a supplier for one warehouse")
class PurchaseOrder:
    id: strawberry.ID
    number: str = strawberry.field(description="PO-000001, PO-000002, ...: no gaps")
    status: PurchaseOrderStatus
    supplier_id: strawberry.ID
    warehouse_id: strawberry.ID
    reference: str | None
    expected_on: date | None
    placed_at: datetime | None
    closed_at: datetime | None = strawberry.field(
        description="When it was fully received or cancelled"
    )
    created_at: datetime
    updated_at: datetime
    lines: list[PurchaseOrderLine]

    @strawberry.field
    async def supplier(self, info: ContextInfo) -> types.Supplier | None:
        row = await info.context.loaders.supplier.load(int(self.supplier_id))
        return types.Supplier.of(row) if row else None

    @strawberry.field
    async def warehouse(self, info: ContextInfo) -> types.Warehouse | None:
        row = await info.context.loaders.warehouse.load(int(self.warehouse_id))
        return types.Warehouse.of(row) if row else None

    @classmethod
    def of(cls, state: PurchaseOrderState) -> PurchaseOrder:
        return cls(
            id=strawberry.ID(str(state.id)),
            number=state.number,
            status=PurchaseOrderStatus(state.status.value),
            supplier_id=strawberry.ID(str(state.supplier_id)),
            warehouse_id=strawberry.ID(str(state.warehouse_id)),
            reference=state.reference,
            expected_on=state.expected_on,
            placed_at=state.placed_at,
            closed_at=state.closed_at,
            created_at=state.created_at,
            updated_at=state.updated_at,
            lines=[
                PurchaseOrderLine(
                    id=strawberry.ID(str(line.id)),
                    product_id=strawberry.ID(str(line.product_id)),
                    quantity=line.quantity,
                    unit_cost=cost_text(line.unit_cost),
                    received=line.received,
                    open=line.open,
                )
                for line in state.lines
            ],
        )


@strawberry.input
class PurchaseOrderFilter:
    status: PurchaseOrderStatus | None = None
    supplier_id: strawberry.ID | None = None
    warehouse_id: strawberry.ID | None = None
    product_id: strawberry.ID | None = strawberry.field(
        default=None, description="Orders with a line of it"
    )


@strawberry.input
class PurchaseOrderLineInput:
    product_id: strawberry.ID
    quantity: int
    unit_cost: str = strawberry.field(description='Decimal as a string, e.g. "2.5000"')


@strawberry.input
class CreatePurchaseOrderInput:
    supplier_id: strawberry.ID
    warehouse_id: strawberry.ID = strawberry.field(description="Where the goods are received")
    reference: str | None = strawberry.field(
        default=UNSET, description="Yours or the supplier's: a quote or confirmation number"
    )
    expected_on: date | None = strawberry.field(default=UNSET, description="When the goods are due")
    lines: list[PurchaseOrderLineInput]


@strawberry.input(description="Fields left out stay as they are; lines, sent, replace every line")
class UpdatePurchaseOrderInput:
    supplier_id: strawberry.ID | None = UNSET
    warehouse_id: strawberry.ID | None = UNSET
    reference: str | None = UNSET
    expected_on: date | None = UNSET
    lines: list[PurchaseOrderLineInput] | None = UNSET


@strawberry.input
class ReceiptLineInput:
    line_id: strawberry.ID = strawberry.field(description="The order line the units arrived for")
    quantity: int


@strawberry.input
class ReceivePurchaseOrderInput:
    lines: list[ReceiptLineInput]


PurchaseOrderResult = Annotated[
    PurchaseOrder | PurchaseOrderError, strawberry.union("PurchaseOrderResult")
]


def _body(input: object) -> dict[str, Any]:
    """The input as the REST body with the same fields (its lines too)."""
    body = sent(input)
    if body.get("lines") is not None:
        body["lines"] = [sent(line) for line in body["lines"]]
    return body


@strawberry.type
class PurchaseOrderQuery:
    @strawberry.field(
        permission_classes=VIEWER, description="The purchase order with this id; null if none"
    )
    async def purchase_order(self, info: ContextInfo, id: strawberry.ID) -> PurchaseOrder | None:
        order_id = parse_id(id, ("id",))
        async with info.context.session() as session:
            try:
                return PurchaseOrder.of(await service.get(session, order_id))
            except NotFound:
                return None

    @strawberry.field(permission_classes=VIEWER, description="Purchase orders, newest first")
    async def purchase_orders(
        self,
        info: ContextInfo,
        filter: PurchaseOrderFilter | None = None,
        first: First = None,
        after: After = None,
    ) -> types.Connection[PurchaseOrder]:
        flt = as_filter(filters.PurchaseOrderFilter, filter)
        async with info.context.session() as session:
            rows, next_cursor = await service.list_purchase_orders(
                session, flt, limit=page_size(first), cursor=after
            )
        return types.Connection.of(rows, next_cursor, service.ORDER, PurchaseOrder.of)


@strawberry.type
class PurchaseOrderMutation:
    @strawberry.mutation(
        permission_classes=MANAGER,
        description="Create a draft purchase order with the next number",
    )
    async def create_purchase_order(
        self, info: ContextInfo, input: CreatePurchaseOrderInput
    ) -> PurchaseOrderResult:
        user = await info.context.signed_in()
        data = PurchaseOrderCreate.model_validate(_body(input))
        async with info.context.write_session() as session:
            return PurchaseOrder.of(await service.create(session, user.id, data))

    @strawberry.mutation(
        permission_classes=MANAGER,
        description="Edit a draft: its fields, and every line when lines are sent",
    )
    async def update_purchase_order(
        self, info: ContextInfo, id: strawberry.ID, input: UpdatePurchaseOrderInput
    ) -> PurchaseOrderResult:
        order_id = parse_id(id, ("id",))
        data = PurchaseOrderUpdate.model_validate(_body(input))
        async with info.context.write_session() as session:
            return PurchaseOrder.of(await service.update_draft(session, order_id, data))

    @strawberry.mutation(
        permission_classes=MANAGER, description="Place a draft: its units go on order"
    )
    async def place_purchase_order(
        self, info: ContextInfo, id: strawberry.ID
    ) -> PurchaseOrderResult:
        order_id = parse_id(id, ("id",))
        async with info.context.write_session() as session:
            return PurchaseOrder.of(await service.place(session, order_id))

    @strawberry.mutation(
        permission_classes=CLERK,
        description="Receive units of some lines: one receipt each, all or none",
    )
    async def receive_purchase_order(
        self, info: ContextInfo, id: strawberry.ID, input: ReceivePurchaseOrderInput
    ) -> PurchaseOrderResult:
        user = await info.context.signed_in()
        order_id = parse_id(id, ("id",))
        data = PurchaseOrderReceive.model_validate(_body(input))
        async with info.context.write_session() as session:
            return PurchaseOrder.of(await service.receive(session, user.id, order_id, data))

    @strawberry.mutation(
        permission_classes=MANAGER,
        description="Cancel what is still open: those units leave onOrder",
    )
    async def cancel_purchase_order(
        self, info: ContextInfo, id: strawberry.ID
    ) -> PurchaseOrderResult:
        order_id = parse_id(id, ("id",))
        async with info.context.write_session() as session:
            return PurchaseOrder.of(await service.cancel(session, order_id))

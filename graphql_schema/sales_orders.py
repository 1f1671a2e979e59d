"""Sales orders in GraphQL: the REST routes' reads and writes, through the same service.

Input is validated by REST's ``SalesOrderCreate``, ``SalesOrderShip`` and list
filter, so GraphQL refuses exactly what REST refuses; a refusal is a member of
the result union (see ``graphql_schema.errors``).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.permission import BasePermission

from graphql_schema import types
from graphql_schema.context import ContextInfo
from graphql_schema.errors import SalesOrderError
from graphql_schema.inputs import UNSET, as_filter, parse_id, sent
from graphql_schema.permissions import ClerkRequired, ViewerRequired
from graphql_schema.queries import After, First, page_size
from inventory import models
from inventory.errors import NotFound
from inventory.kit.money import price_text
from inventory.orders.filters import SalesOrderFilter as RestFilter
from inventory.sales_orders import service
from inventory.sales_orders.schemas import SalesOrderCreate, SalesOrderShip

CLERK: list[type[BasePermission]] = [ClerkRequired]
VIEWER: list[type[BasePermission]] = [ViewerRequired]


@strawberry.enum(description="Where a sales order stands, as in REST")
class SalesOrderStatus(Enum):
    DRAFT = "draft"
    CONFIRMED = "confirmed"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


@strawberry.type
class SalesOrderLine:
    id: strawberry.ID
    product_id: strawberry.ID
    warehouse_id: strawberry.ID
    quantity: int
    allocated: int = strawberry.field(
        description="Units ever allocated to the line, shipped ones included"
    )
    shipped: int
    unit_price: str = strawberry.field(description="Decimal with two places, as a string")
    backordered: int = strawberry.field(description="Units not yet allocated: quantity - allocated")

    @strawberry.field
    async def product(self, info: ContextInfo) -> types.Product | None:
        row = await info.context.loaders.product.load(int(self.product_id))
        return types.Product.of(row) if row else None

    @strawberry.field
    async def warehouse(self, info: ContextInfo) -> types.Warehouse | None:
        row = await info.context.loaders.warehouse.load(int(self.warehouse_id))
        return types.Warehouse.of(row) if row else None

    @classmethod
    def of(cls, row: models.SalesOrderLine) -> SalesOrderLine:
        return cls(
            id=strawberry.ID(str(row.id)),
            product_id=strawberry.ID(str(row.product_id)),
            warehouse_id=strawberry.ID(str(row.warehouse_id)),
            quantity=row.quantity,
            allocated=row.allocated,
            shipped=row.shipped,
            unit_price=price_text(row.unit_price),
            backordered=row.backordered,
        )


@strawberry.type(description="Stock sold to a customer: allocated when confirmed, then shipped")
class SalesOrder:
    id: strawberry.ID
    number: str = strawberry.field(description='"SO-000001": consecutive, with no gaps')
    status: SalesOrderStatus
    customer_reference: str | None
    lines: list[SalesOrderLine]
    created_at: datetime
    confirmed_at: datetime | None
    closed_at: datetime | None = strawberry.field(
        description="When it was fully shipped or cancelled"
    )

    @classmethod
    def of(cls, row: models.SalesOrder) -> SalesOrder:
        return cls(
            id=strawberry.ID(str(row.id)),
            number=row.number,
            status=SalesOrderStatus(row.status.value),
            customer_reference=row.customer_reference,
            lines=[SalesOrderLine.of(line) for line in row.lines],
            created_at=row.created_at,
            confirmed_at=row.confirmed_at,
            closed_at=row.closed_at,
        )


@strawberry.input
class SalesOrderFilter:
    status: SalesOrderStatus | None = None
    customer_reference: str | None = None
    warehouse_id: strawberry.ID | None = strawberry.field(
        default=None, description="Orders with a line from it"
    )
    product_id: strawberry.ID | None = strawberry.field(
        default=None, description="Orders with a line of it"
    )
    backordered: bool | None = strawberry.field(
        default=None, description="Open orders with (true) or without (false) units backordered"
    )


@strawberry.input
class SalesOrderLineInput:
    product_id: strawberry.ID
    warehouse_id: strawberry.ID = strawberry.field(description="The warehouse it ships from")
    quantity: int
    unit_price: str | None = strawberry.field(
        default=UNSET, description="Left out: the product's unit price when the order is made"
    )


@strawberry.input
class CreateSalesOrderInput:
    customer_reference: str | None = strawberry.field(
        default=UNSET, description="The customer's own reference: their order number"
    )
    lines: list[SalesOrderLineInput]


@strawberry.input
class ShipLineInput:
    line_id: strawberry.ID
    quantity: int = strawberry.field(
        description="At most what is allocated to the line and not shipped"
    )


@strawberry.input
class ShipSalesOrderInput:
    lines: list[ShipLineInput]


SalesOrderResult = Annotated[SalesOrder | SalesOrderError, strawberry.union("SalesOrderResult")]


@strawberry.type
class SalesOrderQuery:
    @strawberry.field(
        permission_classes=VIEWER, description="The sales order with this id; null if none"
    )
    async def sales_order(self, info: ContextInfo, id: strawberry.ID) -> SalesOrder | None:
        order_id = parse_id(id, ("id",))
        async with info.context.session() as session:
            try:
                return SalesOrder.of(await service.get(session, order_id))
            except NotFound:
                return None

    @strawberry.field(permission_classes=VIEWER, description="Sales orders, newest first")
    async def sales_orders(
        self,
        info: ContextInfo,
        filter: SalesOrderFilter | None = None,
        first: First = None,
        after: After = None,
    ) -> types.Connection[SalesOrder]:
        flt = as_filter(RestFilter, filter)
        async with info.context.session() as session:
            rows, next_cursor = await service.list_orders(
                session, flt, limit=page_size(first), cursor=after
            )
            return types.Connection.of(rows, next_cursor, service.ORDER, SalesOrder.of)


@strawberry.type
class SalesOrderMutation:
    @strawberry.mutation(permission_classes=CLERK, description="Create a draft sales order")
    async def create_sales_order(
        self, info: ContextInfo, input: CreateSalesOrderInput
    ) -> SalesOrderResult:
        user = await info.context.signed_in()
        body = sent(input)
        body["lines"] = [sent(line) for line in input.lines]
        data = SalesOrderCreate.model_validate(body)
        async with info.context.write_session() as session:
            return SalesOrder.of(await service.create(session, user.id, data))

    @strawberry.mutation(
        permission_classes=CLERK,
        description="Confirm a draft: allocate each line from available stock, backorder the rest",
    )
    async def confirm_sales_order(self, info: ContextInfo, id: strawberry.ID) -> SalesOrderResult:
        user = await info.context.signed_in()
        order_id = parse_id(id, ("id",))
        async with info.context.write_session() as session:
            return SalesOrder.of(await service.confirm(session, user.id, order_id))

    @strawberry.mutation(
        permission_classes=CLERK,
        description="Allocate backordered units from stock that has become available",
    )
    async def allocate_sales_order(self, info: ContextInfo, id: strawberry.ID) -> SalesOrderResult:
        user = await info.context.signed_in()
        order_id = parse_id(id, ("id",))
        async with info.context.write_session() as session:
            return SalesOrder.of(await service.allocate(session, user.id, order_id))

    @strawberry.mutation(
        permission_classes=CLERK,
        description="Ship allocated units, line by line: all lines or none",
    )
    async def ship_sales_order(
        self, info: ContextInfo, id: strawberry.ID, input: ShipSalesOrderInput
    ) -> SalesOrderResult:
        user = await info.context.signed_in()
        order_id = parse_id(id, ("id",))
        data = SalesOrderShip.model_validate({"lines": [sent(line) for line in input.lines]})
        async with info.context.write_session() as session:
            return SalesOrder.of(await service.ship(session, user.id, order_id, data))

    @strawberry.mutation(
        permission_classes=CLERK,
        description="Cancel: free what is allocated and not shipped; shipped units stay shipped",
    )
    async def cancel_sales_order(self, info: ContextInfo, id: strawberry.ID) -> SalesOrderResult:
        order_id = parse_id(id, ("id",))
        async with info.context.write_session() as session:
            return SalesOrder.of(await service.cancel(session, order_id))

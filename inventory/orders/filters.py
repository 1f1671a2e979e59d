"""How the lists (and CSV exports) of purchase and sales orders are narrowed, declared once
for REST and GraphQL."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlalchemy import ColumnElement, exists

from inventory.kit.filters import ListFilter
from inventory.kit.schemas import RefId
from inventory.models import (
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderStatus,
    SalesOrder,
    SalesOrderLine,
    SalesOrderStatus,
)


class PurchaseOrderFilter(ListFilter):
    status: Annotated[PurchaseOrderStatus | None, Field(strict=False)] = None
    supplier_id: RefId | None = None
    warehouse_id: RefId | None = None
    product_id: RefId | None = Field(default=None, description="Orders with a line of it")

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.status is not None:
            conditions.append(PurchaseOrder.status == self.status)
        if self.supplier_id is not None:
            conditions.append(PurchaseOrder.supplier_id == self.supplier_id)
        if self.warehouse_id is not None:
            conditions.append(PurchaseOrder.warehouse_id == self.warehouse_id)
        if self.product_id is not None:
            conditions.append(
                exists().where(
                    PurchaseOrderLine.order_id == PurchaseOrder.id,
                    PurchaseOrderLine.product_id == self.product_id,
                )
            )
        return conditions


class SalesOrderFilter(ListFilter):
    status: Annotated[SalesOrderStatus | None, Field(strict=False)] = None
    customer_reference: str | None = Field(default=None, max_length=100)
    warehouse_id: RefId | None = Field(default=None, description="Orders with a line from it")
    product_id: RefId | None = Field(default=None, description="Orders with a line of it")
    backordered: bool | None = Field(
        default=None, description="Orders with (true) or without (false) units backordered"
    )

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        line = SalesOrderLine.order_id == SalesOrder.id
        if self.status is not None:
            conditions.append(SalesOrder.status == self.status)
        if self.customer_reference is not None:
            conditions.append(SalesOrder.customer_reference == self.customer_reference)
        if self.warehouse_id is not None:
            conditions.append(
                exists().where(line, SalesOrderLine.warehouse_id == self.warehouse_id)
            )
        if self.product_id is not None:
            conditions.append(exists().where(line, SalesOrderLine.product_id == self.product_id))
        if self.backordered is not None:
            short = exists().where(line, SalesOrderLine.allocated < SalesOrderLine.quantity)
            open_ = SalesOrder.status.in_(
                [SalesOrderStatus.confirmed, SalesOrderStatus.partially_shipped]
            )
            conditions.append((open_ & short) if self.backordered else ~(open_ & short))
        return conditions

"""Request and response schemas for sales orders."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from inventory.kit.money import PriceOut, UnitPrice
from inventory.kit.schemas import InputModel, OutputModel, RefId
from inventory.models import SalesOrderStatus
from inventory.stock.schemas import Reference, Units

MAX_LINES = 100
"""Lines one sales order may have (as a reservation)."""


class SalesOrderLineCreate(InputModel):
    product_id: RefId
    warehouse_id: RefId = Field(description="The warehouse the line ships from")
    quantity: Units
    unit_price: UnitPrice | None = Field(
        default=None, description="Left out: the product's unit_price when the order is made"
    )


class SalesOrderCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_reference": "ACME-PO-7731",
                    "lines": [
                        {"product_id": 1, "warehouse_id": 1, "quantity": 80},
                        {"product_id": 2, "warehouse_id": 1, "quantity": 5, "unit_price": "4.20"},
                    ],
                }
            ]
        }
    )

    customer_reference: Reference | None = Field(
        default=None, description="The customer's own reference: their order number"
    )
    lines: Annotated[list[SalesOrderLineCreate], Field(min_length=1, max_length=MAX_LINES)]


class ShipLine(InputModel):
    line_id: RefId = Field(description="The order line's id")
    quantity: Units = Field(description="At most what is allocated to the line and not shipped")


class SalesOrderShip(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"lines": [{"line_id": 11, "quantity": 30}]}]}
    )

    lines: Annotated[list[ShipLine], Field(min_length=1, max_length=MAX_LINES)]


class SalesOrderLineRead(OutputModel):
    id: int
    product_id: int
    warehouse_id: int
    quantity: int
    allocated: int = Field(description="Units ever allocated to the line, shipped ones included")
    shipped: int
    unit_price: PriceOut
    backordered: int = Field(description="Units not yet allocated: quantity - allocated")


class SalesOrderRead(OutputModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "number": "SO-000007",
                    "status": "confirmed",
                    "customer_reference": "ACME-PO-7731",
                    "lines": [
                        {
                            "id": 11,
                            "product_id": 1,
                            "warehouse_id": 1,
                            "quantity": 80,
                            "allocated": 50,
                            "shipped": 0,
                            "unit_price": "12.50",
                            "backordered": 30,
                        }
                    ],
                    "created_at": "2026-12-07T10:00:00Z",
                    "confirmed_at": "2026-12-07T10:05:00Z",
                    "closed_at": None,
                }
            ]
        },
    )

    id: int
    number: str
    status: SalesOrderStatus = Field(
        description="draft, confirmed, partially_shipped, shipped, or cancelled"
    )
    customer_reference: str | None
    lines: list[SalesOrderLineRead]
    created_at: datetime
    confirmed_at: datetime | None
    closed_at: datetime | None = Field(description="When it was fully shipped or cancelled")

"""Request and response schemas for purchase orders."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import ConfigDict, Field, JsonValue

from inventory.kit.money import CostOut, UnitCost
from inventory.kit.schemas import InputModel, NotNull, OutputModel, RefId
from inventory.models import PurchaseOrderStatus
from inventory.stock.schemas import Reference, Units

MAX_LINES = 100
"""Lines one purchase order may carry, and one receipt may name."""

ExpectedOn = Annotated[date, Field(strict=False, description="When the goods are due (a date)")]

_LINES_EXAMPLE: list[JsonValue] = [
    {"product_id": 1, "quantity": 40, "unit_cost": "2.5000"},
    {"product_id": 2, "quantity": 12, "unit_cost": "11.2000"},
]


class PurchaseOrderLineCreate(InputModel):
    product_id: RefId
    quantity: Units
    unit_cost: UnitCost = Field(description="What each unit costs, at most four decimal places")


PurchaseOrderLines = Annotated[
    list[PurchaseOrderLineCreate], Field(min_length=1, max_length=MAX_LINES)
]


class PurchaseOrderCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "supplier_id": 3,
                    "warehouse_id": 1,
                    "reference": "ACME-INV-5521",
                    "expected_on": "2026-12-15",
                    "lines": _LINES_EXAMPLE,
                }
            ]
        }
    )

    supplier_id: RefId
    warehouse_id: RefId = Field(description="Where the goods are received")
    reference: Reference | None = Field(
        default=None, description="Yours or the supplier's: a quote or confirmation number"
    )
    expected_on: ExpectedOn | None = None
    lines: PurchaseOrderLines


class PurchaseOrderUpdate(InputModel):
    """A draft's changes: the fields sent replace the stored ones; ``lines``, sent, replaces
    every line."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"expected_on": "2026-12-18", "lines": _LINES_EXAMPLE[:1]},
            ]
        }
    )

    supplier_id: Annotated[RefId | None, NotNull] = None
    warehouse_id: Annotated[RefId | None, NotNull] = None
    reference: Reference | None = None
    expected_on: ExpectedOn | None = None
    lines: Annotated[PurchaseOrderLines | None, NotNull] = Field(
        default=None, description="Sent: the order's lines are these (new line ids)"
    )


class ReceiptLine(InputModel):
    line_id: RefId = Field(description="The order line the units arrived for")
    quantity: Units


class PurchaseOrderReceive(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"lines": [{"line_id": 71, "quantity": 25}, {"line_id": 72, "quantity": 12}]}
            ]
        }
    )

    lines: Annotated[list[ReceiptLine], Field(min_length=1, max_length=MAX_LINES)]


class PurchaseOrderLineRead(OutputModel):
    id: int
    product_id: int
    quantity: int
    unit_cost: CostOut
    received: int = Field(description="Units received so far")
    open: int = Field(
        description="Units still to come: quantity - received, 0 once the order is cancelled"
    )


class PurchaseOrderRead(OutputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "number": "PO-000007",
                    "status": "partially_received",
                    "supplier_id": 3,
                    "warehouse_id": 1,
                    "reference": "ACME-INV-5521",
                    "expected_on": "2026-12-15",
                    "placed_at": "2026-12-07T09:12:00Z",
                    "closed_at": None,
                    "created_at": "2026-12-07T09:00:00Z",
                    "updated_at": "2026-12-09T14:30:00Z",
                    "lines": [
                        {
                            "id": 71,
                            "product_id": 1,
                            "quantity": 40,
                            "unit_cost": "2.5000",
                            "received": 25,
                            "open": 15,
                        },
                        {
                            "id": 72,
                            "product_id": 2,
                            "quantity": 12,
                            "unit_cost": "11.2000",
                            "received": 12,
                            "open": 0,
                        },
                    ],
                }
            ]
        }
    )

    id: int
    number: str = Field(description="PO-000001, PO-000002, ...: consecutive, with no gaps")
    status: PurchaseOrderStatus = Field(
        description="draft, placed, partially_received, received or cancelled"
    )
    supplier_id: int
    warehouse_id: int
    reference: str | None
    expected_on: date | None
    placed_at: datetime | None
    closed_at: datetime | None = Field(description="When it was fully received or cancelled")
    created_at: datetime
    updated_at: datetime
    lines: list[PurchaseOrderLineRead]

"""Request and response schemas for movements, transfers and stock levels."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from inventory.kit.money import CostOut, PriceOut, UnitCost
from inventory.kit.schemas import InputModel, LongText, OutputModel, RefId
from inventory.models import MovementKind

MAX_QUANTITY = 2**31 - 1
"""Levels and movements are 32-bit integers."""

Reference = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Units = Annotated[int, Field(ge=1, le=MAX_QUANTITY)]


class RecordedKind(StrEnum):
    """The kinds a client may record directly; transfers are made with /stock/transfers."""

    receipt = "receipt"
    shipment = "shipment"
    adjustment = "adjustment"


class MovementCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "product_id": 1,
                    "warehouse_id": 1,
                    "kind": "receipt",
                    "quantity": 20,
                    "reference": "PO-1042",
                }
            ]
        }
    )

    product_id: RefId
    warehouse_id: RefId
    kind: Annotated[RecordedKind, Field(strict=False)]
    quantity: Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)] = Field(
        description="Units: positive for receipts and shipments, signed and non-zero for "
        "adjustments"
    )
    reference: Reference | None = None
    note: LongText | None = None
    unit_cost: UnitCost | None = Field(
        default=None,
        description="What each unit cost, for a receipt: averaged into the level's cost "
        "(left out, the average stays)",
    )

    @field_validator("quantity")
    @classmethod
    def _quantity_fits_kind(cls, quantity: int, info: ValidationInfo) -> int:
        kind = info.data.get("kind")
        if kind is RecordedKind.adjustment and quantity == 0:
            raise ValueError("an adjustment must change the level (not 0)")
        if kind in (RecordedKind.receipt, RecordedKind.shipment) and quantity <= 0:
            raise ValueError(f"a {kind.value} needs a positive quantity")
        return quantity

    @field_validator("unit_cost")
    @classmethod
    def _cost_only_on_receipts(
        cls, unit_cost: Decimal | None, info: ValidationInfo
    ) -> Decimal | None:
        if unit_cost is not None and info.data.get("kind") is not RecordedKind.receipt:
            raise ValueError("only a receipt brings units in at a cost")
        return unit_cost

    @property
    def delta(self) -> int:
        """The signed change this movement makes to the level."""
        return -self.quantity if self.kind is RecordedKind.shipment else self.quantity


class TransferCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"product_id": 1, "from_warehouse_id": 1, "to_warehouse_id": 2, "quantity": 5}
            ]
        }
    )

    product_id: RefId
    from_warehouse_id: RefId
    to_warehouse_id: RefId
    quantity: Units
    reference: Reference | None = None

    @field_validator("to_warehouse_id")
    @classmethod
    def _different_warehouses(cls, to_id: int, info: ValidationInfo) -> int:
        if to_id == info.data.get("from_warehouse_id"):
            raise ValueError("must differ from from_warehouse_id")
        return to_id


class MovementRead(OutputModel):
    id: int
    product_id: int
    warehouse_id: int
    kind: MovementKind
    quantity: int = Field(description="The signed change: a shipment of 3 is -3")
    balance: int = Field(description="The level's quantity right after this entry")
    reference: str | None
    note: str | None
    unit_cost: CostOut | None = Field(
        description="What each unit came in at: a receipt's cost, or a transfer's (the "
        "source's average cost, on both legs); null when none was given"
    )
    user_id: int | None
    transfer_id: uuid.UUID | None
    created_at: datetime


class TransferRead(OutputModel):
    id: uuid.UUID
    product_id: int
    from_warehouse_id: int
    to_warehouse_id: int
    quantity: int
    reference: str | None
    created_at: datetime
    movements: list[MovementRead] = Field(description="The transfer_out and transfer_in legs")


class StockLevelRead(OutputModel):
    product_id: int
    warehouse_id: int
    quantity: int
    reserved: int | None = Field(
        description="Units promised by reservations that have not expired; null for levels "
        "rebuilt as of a past moment (as_of)"
    )
    available: int | None = Field(
        description="quantity - reserved: what may still be promised; null with reserved"
    )
    reorder_level: int
    updated_at: datetime


class HistoryEntryRead(MovementRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 812,
                    "product_id": 1,
                    "warehouse_id": 2,
                    "kind": "shipment",
                    "quantity": -3,
                    "balance": 9,
                    "reference": "SO-2207",
                    "note": None,
                    "unit_cost": None,
                    "user_id": 4,
                    "transfer_id": None,
                    "created_at": "2026-11-30T16:02:11.503Z",
                    "running_balance": 41,
                }
            ]
        }
    )

    running_balance: int = Field(
        description="The product's total on hand right after this entry, across every "
        "warehouse, or the one warehouse the list is narrowed to"
    )


class ValuationLineRead(OutputModel):
    product_id: int
    warehouse_id: int
    quantity: int = Field(description="Units on hand (levels at 0 are left out)")
    average_cost: CostOut = Field(description="Weighted average cost of a unit, 4 places")
    value: PriceOut = Field(description="quantity * average_cost, to the cent")


class ValuationRead(OutputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lines": [
                        {
                            "product_id": 1,
                            "warehouse_id": 1,
                            "quantity": 15,
                            "average_cost": "3.5000",
                            "value": "52.50",
                        },
                        {
                            "product_id": 1,
                            "warehouse_id": 2,
                            "quantity": 5,
                            "average_cost": "3.5000",
                            "value": "17.50",
                        },
                    ],
                    "total": "70.00",
                }
            ]
        }
    )

    lines: list[ValuationLineRead] = Field(description="By product, then warehouse")
    total: PriceOut = Field(description="The sum of the lines' values")

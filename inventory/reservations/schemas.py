"""Request and response schemas for reservations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from inventory.kit.schemas import InputModel, OutputModel, RefId
from inventory.models import ReservationStatus
from inventory.stock.schemas import Reference, Units

MAX_LINES = 100
"""Lines one reservation may hold (one cart, one order)."""


class ReservationLineCreate(InputModel):
    product_id: RefId
    warehouse_id: RefId | None = Field(
        default=None,
        description="Left out: the warehouse with the most available units (then the lowest id)",
    )
    quantity: Units


class ReservationCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lines": [
                        {"product_id": 1, "warehouse_id": 1, "quantity": 2},
                        {"product_id": 2, "quantity": 1},
                    ],
                    "ttl_seconds": 900,
                    "reference": "cart-8812",
                }
            ]
        }
    )

    lines: Annotated[list[ReservationLineCreate], Field(min_length=1, max_length=MAX_LINES)]
    ttl_seconds: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="How long the units stay held; the server's default when left out, "
        "at most its maximum",
    )
    reference: Reference | None = Field(
        default=None, description="Yours: an order or cart number; shipments carry it"
    )


class ReservationLineRead(OutputModel):
    product_id: int
    warehouse_id: int
    quantity: int


class ReservationRead(OutputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 41,
                    "status": "confirmed",
                    "reference": "cart-8812",
                    "expires_at": "2026-12-07T10:15:00Z",
                    "created_at": "2026-12-07T10:00:00Z",
                    "lines": [
                        {"product_id": 1, "warehouse_id": 1, "quantity": 2},
                        {"product_id": 2, "warehouse_id": 3, "quantity": 1},
                    ],
                    "movement_ids": [905, 906],
                }
            ]
        }
    )

    id: int
    status: ReservationStatus = Field(
        description="held until it is confirmed, released or expires_at passes (expired)"
    )
    reference: str | None
    expires_at: datetime | None = Field(
        description="null for a sales order's allocation, which holds until it ships or "
        "the order is cancelled"
    )
    created_at: datetime
    lines: list[ReservationLineRead]
    movement_ids: list[int] = Field(
        description="The shipments that confirmed it, one per line; empty unless confirmed"
    )
    sales_order_id: int | None = Field(
        default=None, description="The sales order it holds allocations for, if any"
    )

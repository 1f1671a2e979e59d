"""Request and response schemas for products, and the SKU and price field types."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from inventory.kit.money import PriceOut, UnitPrice
from inventory.kit.schemas import (
    MAX_ID,
    InputModel,
    LongText,
    Name,
    NotNull,
    OutputModel,
    RefId,
    ascii_upper,
)

Sku = Annotated[
    str,
    BeforeValidator(ascii_upper),
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Z0-9\-_.]+$"
    ),
]
"""1-64 of ``A-Z0-9-_.``, stored upper-case: ``ab-1`` and ``AB-1`` are the same product."""


Quantity = Annotated[int, Field(ge=0, le=MAX_ID)]


class ProductCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sku": "HAM-001",
                    "name": "Claw hammer",
                    "category_id": 1,
                    "unit_price": "12.50",
                    "reorder_level": 5,
                }
            ]
        }
    )

    sku: Sku
    name: Name
    description: LongText | None = None
    category_id: RefId | None = None
    supplier_id: RefId | None = None
    unit_price: UnitPrice
    reorder_level: Quantity = 0
    is_active: bool = True


class ProductUpdate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"unit_price": "13.00", "reorder_level": 8}]}
    )

    sku: Annotated[Sku | None, NotNull] = None
    name: Annotated[Name | None, NotNull] = None
    description: LongText | None = None
    category_id: RefId | None = None
    supplier_id: RefId | None = None
    unit_price: Annotated[UnitPrice | None, NotNull] = None
    reorder_level: Annotated[Quantity | None, NotNull] = None
    is_active: Annotated[bool | None, NotNull] = None


class ProductRead(OutputModel):
    id: int
    sku: str
    name: str
    description: str | None
    category_id: int | None
    supplier_id: int | None
    unit_price: PriceOut
    reorder_level: int
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime

"""Request and response schemas for stock counts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from inventory.kit.schemas import InputModel, OutputModel, RefId
from inventory.models import CountStatus
from inventory.stock.schemas import MAX_QUANTITY

MAX_NAMED_PRODUCTS = 10_000
"""How many products one count may name explicitly."""


class CountOpen(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"warehouse_id": 1},
                {"warehouse_id": 1, "category_id": 2},
                {"warehouse_id": 1, "product_ids": [4, 7, 9]},
            ]
        }
    )

    warehouse_id: RefId
    product_ids: (
        Annotated[list[RefId], Field(min_length=1, max_length=MAX_NAMED_PRODUCTS)] | None
    ) = Field(
        default=None,
        description="Count these products (active ones; repeats are counted once)",
    )
    category_id: RefId | None = Field(
        default=None,
        description="Count the category's active products that have a level in the warehouse",
    )

    @field_validator("category_id")
    @classmethod
    def _one_selection(cls, category_id: int | None, info: ValidationInfo) -> int | None:
        if category_id is not None and info.data.get("product_ids") is not None:
            raise ValueError("give product_ids or category_id, not both")
        return category_id


class CountLineRecord(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"counted": 90}]})

    counted: Annotated[int, Field(ge=0, le=MAX_QUANTITY)] = Field(
        description="Units found on the shelf"
    )


class CountLineRead(OutputModel):
    product_id: int
    expected: int = Field(
        description="The ledger's balance at counted_at (at the count's start until counted)"
    )
    counted: int | None
    counted_at: datetime | None
    difference: int | None = Field(description="counted - expected; null until counted")


class CountRead(OutputModel):
    id: int
    status: CountStatus
    warehouse_id: int
    started_at: datetime
    finished_at: datetime | None = Field(description="When it was finished or cancelled")
    user_id: int | None = Field(description="Who opened it")
    lines: list[CountLineRead]


class CountFinishRead(CountRead):
    movement_ids: list[int] = Field(
        description="The adjustments the finish recorded, one per line that differed"
    )

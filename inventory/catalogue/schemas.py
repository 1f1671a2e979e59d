"""Request and response schemas for categories, suppliers and warehouses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator, StringConstraints

from inventory.kit.schemas import (
    Email,
    InputModel,
    LongText,
    Name,
    NotNull,
    OutputModel,
    ascii_upper,
)

CategoryName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
WarehouseCode = Annotated[
    str,
    BeforeValidator(ascii_upper),
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[A-Z0-9][A-Z0-9_\-]*$"
    ),
]


class CategoryCreate(InputModel):
    name: CategoryName
    description: LongText | None = None


class CategoryUpdate(InputModel):
    name: Annotated[CategoryName | None, NotNull] = None
    description: LongText | None = None


class CategoryRead(OutputModel):
    id: int
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


class SupplierCreate(InputModel):
    name: Name
    email: Email | None = None
    phone: Phone | None = None


class SupplierUpdate(InputModel):
    name: Annotated[Name | None, NotNull] = None
    email: Email | None = None
    phone: Phone | None = None


class SupplierRead(OutputModel):
    id: int
    name: str
    email: str | None
    phone: str | None
    created_at: datetime
    updated_at: datetime


class WarehouseCreate(InputModel):
    code: WarehouseCode
    name: Name
    address: LongText | None = None
    is_active: bool = True


class WarehouseUpdate(InputModel):
    code: Annotated[WarehouseCode | None, NotNull] = None
    name: Annotated[Name | None, NotNull] = None
    address: LongText | None = None
    is_active: Annotated[bool | None, NotNull] = None


class WarehouseRead(OutputModel):
    id: int
    code: str
    name: str
    address: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime

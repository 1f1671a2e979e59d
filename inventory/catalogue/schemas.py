"""Request and response schemas for categories, suppliers and warehouses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, StringConstraints

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Hand tools", "description": "Hammers, saws and pliers"}]
        }
    )

    name: CategoryName
    description: LongText | None = None


class CategoryUpdate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"description": "Hand tools of every kind"}]}
    )

    name: Annotated[CategoryName | None, NotNull] = None
    description: LongText | None = None


class CategoryRead(OutputModel):
    id: int
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


class SupplierCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Acme Tools", "email": "orders@acme.example", "phone": "+44 20 7946 0000"}
            ]
        }
    )

    name: Name
    email: Email | None = None
    phone: Phone | None = None


class SupplierUpdate(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"phone": "+44 20 7946 0001"}]})

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"code": "LDN-1", "name": "London", "address": "1 Dock Road, London"}]
        }
    )

    code: WarehouseCode
    name: Name
    address: LongText | None = None
    is_active: bool = True


class WarehouseUpdate(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"is_active": False}]})

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

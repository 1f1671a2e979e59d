"""Inputs, and how GraphQL arguments become what the REST schemas and filters validate.

Inputs carry the REST field names (camelCase on the wire). A field left out is
``UNSET`` and stays out of the dict handed to the REST schema's
``model_validate``, so defaults, required fields, ``exclude_unset`` on update,
and "null clears it" behave exactly as a REST body with the same fields. A
filter input becomes the list filter REST's query parameters fill.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, TypeGuard, TypeVar, get_args

import strawberry
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from strawberry.types.base import StrawberryOptional, get_object_definition
from strawberry.utils.str_converters import to_camel_case

from graphql_schema import types
from inventory.errors import ValidationFailed, field_error
from inventory.kit.filters import ListFilter
from inventory.kit.schemas import RefId

T = TypeVar("T")
F = TypeVar("F", bound=ListFilter)

UNSET: Any = strawberry.UNSET
_REF_ID: TypeAdapter[int] = TypeAdapter(RefId)


def rest_id(value: str) -> int | str:
    """An ``ID`` as the integer REST uses; anything else is left for validation to refuse."""
    return int(value) if value.isascii() and value.isdigit() else value


def parse_id(value: str, loc: tuple[str, ...]) -> int:
    """An ``ID`` argument as an entry id, with REST's range; ValidationFailed at ``loc`` if not."""
    return validated(_REF_ID, rest_id(value), loc)


def validated(rest_type: TypeAdapter[T], value: object, loc: tuple[str, ...]) -> T:
    """``value`` checked by the type REST declares for it; ValidationFailed at ``loc`` if not."""
    try:
        return rest_type.validate_python(value, strict=True)
    except PydanticValidationError as exc:
        raise _refused(exc, lambda _: loc) from None


def as_filter(filter_type: type[F], input: object | None) -> F:
    """A filter input as the list filter REST fills; ValidationFailed under ``filter`` if not.

    Values are checked strictly, as the other arguments are: an ``ID`` is an
    integer only when it is written as one.
    """
    if input is None:
        return filter_type()
    values = sent(input)
    for name, field in filter_type.model_fields.items():
        # An enum arrives as its value; strictly, only the filter's own enum is one.
        annotation = field.annotation
        enum = next((t for t in (annotation, *get_args(annotation)) if _is_enum(t)), None)
        if enum is not None and values.get(name) is not None:
            values[name] = enum(values[name])
    try:
        return filter_type.model_validate(values, strict=True)
    except PydanticValidationError as exc:
        raise _refused(
            exc, lambda field: ("filter", *(to_camel_case(str(p)) for p in field))
        ) from None


def _refused(
    exc: PydanticValidationError, where: Callable[[tuple[int | str, ...]], tuple[str, ...]]
) -> ValidationFailed:
    """``exc`` as ValidationFailed; ``where`` turns each error's location into GraphQL's."""
    found = exc.errors(include_input=False)
    locs = [where(e["loc"]) for e in found]
    return ValidationFailed(
        f"{'.'.join(locs[0])}: {found[0]['msg']}",
        [field_error(loc, e["msg"], e["type"]) for loc, e in zip(locs, found, strict=True)],
    )


def sent(input: object) -> dict[str, Any]:
    """The fields the client sent (explicit nulls included), keyed by their REST names."""
    body = {}
    for field in get_object_definition(input, strict=True).fields:
        value = getattr(input, field.python_name)
        if value is UNSET:
            continue
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, str) and _is_id(field.type):
            value = rest_id(value)
        body[field.python_name] = value
    return body


def _is_enum(annotation: object) -> TypeGuard[type[Enum]]:
    return isinstance(annotation, type) and issubclass(annotation, Enum)


def _is_id(field_type: object) -> bool:
    while isinstance(field_type, StrawberryOptional):
        field_type = field_type.of_type
    return field_type is strawberry.ID


# List filters: the fields of the REST list's query parameters.


@strawberry.input
class ProductFilter:
    q: str | None = strawberry.field(default=None, description="SKU or name contains")
    category_id: strawberry.ID | None = None
    supplier_id: strawberry.ID | None = None
    is_active: bool | None = None
    below_reorder: bool | None = strawberry.field(
        default=None, description="Total stock on hand at or below the reorder level"
    )


@strawberry.input
class StockLevelFilter:
    product_id: strawberry.ID | None = None
    warehouse_id: strawberry.ID | None = None
    below_reorder: bool | None = strawberry.field(
        default=None, description="Levels at or below the product's reorder level"
    )


@strawberry.input
class MovementFilter:
    product_id: strawberry.ID | None = None
    warehouse_id: strawberry.ID | None = None
    kind: types.LedgerKind | None = None
    since: datetime | None = strawberry.field(
        default=None, description="Created at or after; without a zone, UTC"
    )
    until: datetime | None = strawberry.field(
        default=None, description="Created before; without a zone, UTC"
    )


@strawberry.input
class ProductHistoryFilter:
    warehouse_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Only this warehouse; the running balance then counts this warehouse only",
    )
    since: datetime | None = strawberry.field(
        default=None, description="Created at or after; without a zone, UTC"
    )
    until: datetime | None = strawberry.field(
        default=None, description="Created before; without a zone, UTC"
    )


# Stock writes.


@strawberry.input
class RecordMovementInput:
    product_id: strawberry.ID
    warehouse_id: strawberry.ID
    kind: types.MovementKind
    quantity: int
    reference: str | None = UNSET
    note: str | None = UNSET
    unit_cost: str | None = strawberry.field(
        default=UNSET,
        description="What each unit cost, for a receipt only: a decimal as a string, at most "
        'four places, e.g. "3.50"; averaged into the level\'s cost (left out, the average stays)',
    )


@strawberry.input
class TransferStockInput:
    product_id: strawberry.ID
    from_warehouse_id: strawberry.ID
    to_warehouse_id: strawberry.ID
    quantity: int
    reference: str | None = UNSET


# Catalogue writes: create takes the required fields, update only what is sent.

_UPDATE = "Only the fields sent are changed; null clears an optional field."


@strawberry.input
class CreateCategoryInput:
    name: str
    description: str | None = UNSET


@strawberry.input(description=_UPDATE)
class UpdateCategoryInput:
    name: str | None = UNSET
    description: str | None = UNSET


@strawberry.input
class CreateSupplierInput:
    name: str
    email: str | None = UNSET
    phone: str | None = UNSET


@strawberry.input(description=_UPDATE)
class UpdateSupplierInput:
    name: str | None = UNSET
    email: str | None = UNSET
    phone: str | None = UNSET


@strawberry.input
class CreateWarehouseInput:
    code: str
    name: str
    address: str | None = UNSET
    is_active: bool | None = strawberry.field(default=UNSET, description="Defaults to true")


@strawberry.input(description=_UPDATE)
class UpdateWarehouseInput:
    code: str | None = UNSET
    name: str | None = UNSET
    address: str | None = UNSET
    is_active: bool | None = UNSET


@strawberry.input
class CreateProductInput:
    sku: str
    name: str
    unit_price: str = strawberry.field(description='Decimal as a string, e.g. "12.50"')
    description: str | None = UNSET
    category_id: strawberry.ID | None = UNSET
    supplier_id: strawberry.ID | None = UNSET
    reorder_level: int | None = strawberry.field(default=UNSET, description="Defaults to 0")
    is_active: bool | None = strawberry.field(default=UNSET, description="Defaults to true")


@strawberry.input(description=_UPDATE)
class UpdateProductInput:
    sku: str | None = UNSET
    name: str | None = UNSET
    unit_price: str | None = UNSET
    description: str | None = UNSET
    category_id: strawberry.ID | None = UNSET
    supplier_id: strawberry.ID | None = UNSET
    reorder_level: int | None = UNSET
    is_active: bool | None = UNSET

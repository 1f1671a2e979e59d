"""Query root: the same reads as REST, through the same services."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Annotated, Any

import strawberry
from pydantic import Field, TypeAdapter
from strawberry.permission import BasePermission
from strawberry.types.nodes import SelectedField

from graphql_schema import types
from graphql_schema.context import ContextInfo
from graphql_schema.inputs import (
    MovementFilter,
    ProductFilter,
    StockLevelFilter,
    as_filter,
    parse_id,
    validated,
)
from graphql_schema.permissions import ViewerRequired
from inventory import models
from inventory.catalogue import service as catalogue
from inventory.errors import NotFound, ValidationFailed, field_error
from inventory.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from inventory.products import filters as product_filters
from inventory.products import service as products
from inventory.products.schemas import Sku
from inventory.stock import filters as stock_filters
from inventory.stock import history
from inventory.stock import service as stock

VIEWER: list[type[BasePermission]] = [ViewerRequired]
_SKU: TypeAdapter[str] = TypeAdapter(Sku)
_MOMENT: TypeAdapter[datetime] = TypeAdapter(stock_filters.LedgerBound)


_PAGE_SIZE: TypeAdapter[int] = TypeAdapter(Annotated[int, Field(ge=1, le=MAX_LIMIT)])


First = Annotated[
    int | None,
    strawberry.argument(description="Page size, 1 to 200 as REST's limit; 50 if left out"),
]
After = Annotated[
    str | None, strawberry.argument(description="The `endCursor` of the previous page")
]


def page_size(first: int | None) -> int:
    """A page size as REST's ``limit`` takes it (1 to 200); BAD_USER_INPUT outside that."""
    return DEFAULT_LIMIT if first is None else validated(_PAGE_SIZE, first, ("first",))


@strawberry.type
class Query:
    @strawberry.field(permission_classes=VIEWER)
    async def me(self, info: ContextInfo) -> types.User:
        return types.User.of(await info.context.signed_in())

    @strawberry.field(
        permission_classes=VIEWER,
        description="The product with this id or this SKU (exactly one); null if there is none",
    )
    async def product(
        self, info: ContextInfo, id: strawberry.ID | None = None, sku: str | None = None
    ) -> types.Product | None:
        if (id is None) == (sku is None):
            raise ValidationFailed(
                "Give exactly one of id and sku.",
                [field_error((), "give exactly one of id and sku", "value_error")],
            )
        async with info.context.session() as session:
            if id is not None:
                product_id = parse_id(id, ("id",))
                try:
                    return types.Product.of(await products.get_product(session, product_id))
                except NotFound:
                    return None
            row = await products.get_by_sku(session, validated(_SKU, sku, ("sku",)))
        return types.Product.of(row) if row else None

    @strawberry.field(permission_classes=VIEWER)
    async def products(
        self,
        info: ContextInfo,
        filter: ProductFilter | None = None,
        sort: types.ProductSort = types.ProductSort.SKU,
        first: First = None,
        after: After = None,
    ) -> types.Connection[types.Product]:
        flt = as_filter(product_filters.ProductFilter, filter)
        by = product_filters.ProductSort(sort.value)
        async with info.context.session() as session:
            rows, next_cursor = await products.list_products(
                session, flt, sort=by, limit=page_size(first), cursor=after
            )
        await prefetch(info, rows)
        order = product_filters.SORT_ORDERS[by]
        return types.Connection.of(rows, next_cursor, order, types.Product.of)

    @strawberry.field(permission_classes=VIEWER)
    async def categories(
        self, info: ContextInfo, first: First = None, after: After = None
    ) -> types.Connection[types.Category]:
        entries = catalogue.categories
        async with info.context.session() as session:
            rows, next_cursor = await entries.list(session, limit=page_size(first), cursor=after)
        return types.Connection.of(rows, next_cursor, entries.order, types.Category.of)

    @strawberry.field(permission_classes=VIEWER)
    async def suppliers(
        self, info: ContextInfo, first: First = None, after: After = None
    ) -> types.Connection[types.Supplier]:
        entries = catalogue.suppliers
        async with info.context.session() as session:
            rows, next_cursor = await entries.list(session, limit=page_size(first), cursor=after)
        return types.Connection.of(rows, next_cursor, entries.order, types.Supplier.of)

    @strawberry.field(permission_classes=VIEWER)
    async def warehouses(
        self, info: ContextInfo, first: First = None, after: After = None
    ) -> types.Connection[types.Warehouse]:
        entries = catalogue.warehouses
        async with info.context.session() as session:
            rows, next_cursor = await entries.list(session, limit=page_size(first), cursor=after)
        return types.Connection.of(rows, next_cursor, entries.order, types.Warehouse.of)

    @strawberry.field(permission_classes=VIEWER)
    async def stock_levels(
        self,
        info: ContextInfo,
        filter: StockLevelFilter | None = None,
        first: First = None,
        after: After = None,
        as_of: Annotated[
            datetime | None,
            strawberry.argument(
                description="The levels as they stood at this moment (without a zone, UTC), "
                "rebuilt from the ledger; `reserved`, `available` and `onOrder` are null then"
            ),
        ] = None,
    ) -> types.Connection[types.StockLevel]:
        flt = as_filter(stock_filters.LevelFilter, filter)
        limit = page_size(first)
        async with info.context.session() as session:
            if as_of is not None:
                at = validated(_MOMENT, as_of, ("asOf",))
                then, next_cursor = await history.list_levels_at(
                    session, flt, at, limit=limit, cursor=after
                )
                return types.Connection.of(
                    then, next_cursor, stock.LEVEL_ORDER, types.StockLevel.of
                )
            rows, next_cursor = await stock.list_levels(session, flt, limit=limit, cursor=after)
        return types.Connection.of(rows, next_cursor, stock.LEVEL_ORDER, types.StockLevel.of)

    @strawberry.field(permission_classes=VIEWER)
    async def movements(
        self,
        info: ContextInfo,
        filter: MovementFilter | None = None,
        first: First = None,
        after: After = None,
    ) -> types.Connection[types.Movement]:
        flt = as_filter(stock_filters.LedgerFilter, filter)
        async with info.context.session() as session:
            rows, next_cursor = await stock.list_movements(
                session, flt, limit=page_size(first), cursor=after
            )
        return types.Connection.of(rows, next_cursor, stock.LEDGER_ORDER, types.Movement.of)


async def prefetch(info: ContextInfo, rows: Sequence[models.Product]) -> None:
    """Load what the selection asks of a page of products, one query per kind, before
    the page is returned: the nested fields then resolve without awaiting."""
    asked = selected_names(info.selected_fields)
    loaders = info.context.loaders
    loads: list[Awaitable[object]] = []
    if "category" in asked:
        loads.append(loaders.category.load_many({r.category_id for r in rows if r.category_id}))
    if "supplier" in asked:
        loads.append(loaders.supplier.load_many({r.supplier_id for r in rows if r.supplier_id}))
    if "stockLevels" in asked:
        loads.append(loaders.levels_of_product.load_many([r.id for r in rows]))
    await asyncio.gather(*loads)


def selected_names(selections: Sequence[Any]) -> set[str]:
    """Every field name anywhere in a selection (fragments included)."""
    names: set[str] = set()
    for selection in selections:
        if isinstance(selection, SelectedField):
            names.add(selection.name)
        names |= selected_names(selection.selections)
    return names

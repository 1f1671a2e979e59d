"""``stockValuation``: REST's ``GET /stock/valuation`` in GraphQL, through the same service.

The arguments are checked as REST's query parameters are (ids in REST's range,
``asOf`` a time, UTC without a zone); costs and values are strings with REST's
places.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from pydantic import TypeAdapter
from strawberry.permission import BasePermission

from graphql_schema import types
from graphql_schema.context import ContextInfo
from graphql_schema.inputs import parse_id, validated
from graphql_schema.permissions import ManagerRequired
from inventory.kit.money import cost_text, price_text
from inventory.stock import filters as stock_filters
from inventory.stock import valuation

MANAGER: list[type[BasePermission]] = [ManagerRequired]
_MOMENT: TypeAdapter[datetime] = TypeAdapter(stock_filters.LedgerBound)


@strawberry.type(description="One level holding stock, at its weighted average cost")
class ValuationLine:
    product_id: strawberry.ID
    warehouse_id: strawberry.ID
    quantity: int
    average_cost: str = strawberry.field(description="Decimal with four places, as a string")
    value: str = strawberry.field(
        description="quantity * averageCost to the cent: two places, as a string"
    )

    @strawberry.field
    async def product(self, info: ContextInfo) -> types.Product | None:
        row = await info.context.loaders.product.load(int(self.product_id))
        return types.Product.of(row) if row else None

    @strawberry.field
    async def warehouse(self, info: ContextInfo) -> types.Warehouse | None:
        row = await info.context.loaders.warehouse.load(int(self.warehouse_id))
        return types.Warehouse.of(row) if row else None

    @classmethod
    def of(cls, line: valuation.ValuationLine) -> ValuationLine:
        return cls(
            product_id=strawberry.ID(str(line.product_id)),
            warehouse_id=strawberry.ID(str(line.warehouse_id)),
            quantity=line.quantity,
            average_cost=cost_text(line.average_cost),
            value=price_text(line.value),
        )


@strawberry.type(description="What the stock is worth: REST's /stock/valuation")
class StockValuation:
    lines: list[ValuationLine] = strawberry.field(
        description="By product, then warehouse; levels at 0 are left out"
    )
    total: str = strawberry.field(description="The sum of the lines' values, two places")

    @classmethod
    def of(cls, found: valuation.Valuation) -> StockValuation:
        return cls(
            lines=[ValuationLine.of(line) for line in found.lines], total=price_text(found.total)
        )


@strawberry.type
class ValuationQuery:
    @strawberry.field(
        permission_classes=MANAGER,
        description="What the stock is worth at weighted average cost, now or as of a moment",
    )
    async def stock_valuation(
        self,
        info: ContextInfo,
        warehouse_id: strawberry.ID | None = None,
        product_id: strawberry.ID | None = None,
        as_of: Annotated[
            datetime | None,
            strawberry.argument(
                description="The worth at this moment (without a zone, UTC), from each level's "
                "last ledger entry by then"
            ),
        ] = None,
    ) -> StockValuation:
        flt = stock_filters.ValuationFilter(
            warehouse_id=None if warehouse_id is None else parse_id(warehouse_id, ("warehouseId",)),
            product_id=None if product_id is None else parse_id(product_id, ("productId",)),
        )
        at = None if as_of is None else validated(_MOMENT, as_of, ("asOf",))
        async with info.context.session() as session:
            return StockValuation.of(await valuation.value_stock(session, flt, at))

"""What the stock is worth: each level's quantity at its weighted average cost, now or at a
past moment, and the total.

The present comes from the levels, which keep their average cost. A past
moment comes from the ledger: every entry records the level's balance and
average cost right after it, so a level's worth then is ``balance *
average_cost`` of its last entry at or before the moment, the same backward
index step the levels as of a moment take (``inventory.stock.history``), with
nothing replayed. Valuation and the ledger agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from inventory.kit.money import cost, value_of
from inventory.models import StockLevel
from inventory.stock.filters import ValuationFilter
from inventory.stock.history import average_cost_at_expr, balance_at_expr


@dataclass(frozen=True)
class ValuationLine:
    """One level with stock: its units, their average cost and what they are worth."""

    product_id: int
    warehouse_id: int
    quantity: int
    average_cost: Decimal
    value: Decimal
    """``quantity * average_cost``, to the cent (half up)."""


@dataclass(frozen=True)
class Valuation:
    lines: list[ValuationLine]
    total: Decimal
    """The sum of the lines' values, so it always adds up to what the lines show."""


async def value_stock(
    session: AsyncSession, flt: ValuationFilter, at: datetime | None = None
) -> Valuation:
    """Every level in ``flt`` holding stock (now, or at ``at``) with its value, by product
    then warehouse; levels at 0 are left out, as they are worth nothing."""
    quantity: ColumnElement[int] | InstrumentedAttribute[int]
    average_cost: ColumnElement[Decimal] | InstrumentedAttribute[Decimal]
    if at is None:
        quantity, average_cost = StockLevel.quantity, StockLevel.average_cost
    else:
        quantity = balance_at_expr(StockLevel.product_id, StockLevel.warehouse_id, at)
        average_cost = average_cost_at_expr(StockLevel.product_id, StockLevel.warehouse_id, at)
    stmt = (
        select(
            StockLevel.product_id,
            StockLevel.warehouse_id,
            quantity.label("quantity"),
            average_cost.label("average_cost"),
        )
        .where(*flt.conditions(), quantity > 0)
        .order_by(StockLevel.product_id, StockLevel.warehouse_id)
    )
    lines = []
    for row in await session.execute(stmt):
        units, unit_cost = int(row.quantity), cost(Decimal(str(row.average_cost or 0)))
        lines.append(
            ValuationLine(
                row.product_id, row.warehouse_id, units, unit_cost, value_of(units, unit_cost)
            )
        )
    return Valuation(lines, sum((line.value for line in lines), Decimal("0.00")))

"""The ledger read back in time: a level's balance at any moment, from the ledger alone.

Each ledger entry stores the level's balance right after it, and the ledger
is indexed by (product, warehouse, created_at, id): the balance at a moment
is the balance of the level's last entry at or before it, one backward step
along that index.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from inventory.models import StockMovement

IntColumn = ColumnElement[int] | InstrumentedAttribute[int] | int


def balance_at_expr(
    product_id: IntColumn, warehouse_id: IntColumn, at: datetime
) -> ColumnElement[int]:
    """The level's quantity at ``at`` (0 before its first entry), as a scalar subquery."""
    last = (
        select(StockMovement.balance)
        .where(
            StockMovement.product_id == product_id,
            StockMovement.warehouse_id == warehouse_id,
            StockMovement.created_at <= at,
        )
        .order_by(StockMovement.created_at.desc(), StockMovement.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(last, 0)


async def balance_at(
    session: AsyncSession, product_id: int, warehouse_id: int, at: datetime
) -> int:
    """The level's quantity at ``at`` as the ledger tells it (0 before its first entry)."""
    return int(await session.scalar(select(balance_at_expr(product_id, warehouse_id, at))) or 0)

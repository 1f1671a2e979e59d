"""The ledger read back in time: levels at any moment and a product's history, from the
ledger alone.

Each ledger entry stores the level's balance and average cost right after it,
and the ledger is indexed by (product, warehouse, created_at, id): the balance
(or the cost) at a moment is that of the level's last entry at or before it,
one backward step along that index. Entries are put in time order by (created_at, id), the
order of that index; the two legs of a transfer share a created_at, and the
lower id comes first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from inventory.kit.pagination import SortOrder, decode_cursor, paginate_rows
from inventory.kit.persistence import get_or_404
from inventory.models import MovementKind, Product, StockLevel, StockMovement
from inventory.models.columns import COST
from inventory.stock.filters import HistoryFilter, LevelFilter
from inventory.stock.holds import IntColumn
from inventory.stock.service import LEVEL_ORDER

HISTORY_ORDER = SortOrder("created_at", StockMovement.created_at, StockMovement.id, "datetime")
"""A product's history, oldest first: the order its running balance adds up in."""


def _last_entry(
    column: InstrumentedAttribute[Any],
    product_id: IntColumn,
    warehouse_id: IntColumn,
    *bounds: ColumnElement[bool],
) -> ColumnElement[Any]:
    """``column`` of the level's last entry within ``bounds`` (NULL if none), a scalar
    subquery that never correlates to a ledger the enclosing statement reads."""
    return (
        select(column)
        .where(
            StockMovement.product_id == product_id,
            StockMovement.warehouse_id == warehouse_id,
            *bounds,
        )
        .order_by(StockMovement.created_at.desc(), StockMovement.id.desc())
        .limit(1)
        .correlate_except(StockMovement)
        .scalar_subquery()
    )


def balance_at_expr(
    product_id: IntColumn, warehouse_id: IntColumn, at: datetime
) -> ColumnElement[int]:
    """The level's quantity at ``at`` (0 before its first entry), as a scalar subquery."""
    last = _last_entry(
        StockMovement.balance, product_id, warehouse_id, StockMovement.created_at <= at
    )
    return func.coalesce(last, 0)


def average_cost_at_expr(
    product_id: IntColumn, warehouse_id: IntColumn, at: datetime
) -> ColumnElement[Decimal]:
    """The level's average unit cost at ``at``, as a scalar subquery: the one its last
    entry then recorded (0 before its first entry, and for entries older than valuation)."""
    last = _last_entry(
        StockMovement.average_cost, product_id, warehouse_id, StockMovement.created_at <= at
    )
    return func.coalesce(last, literal(0, COST))


async def balance_at(
    session: AsyncSession, product_id: int, warehouse_id: int, at: datetime
) -> int:
    """The level's quantity at ``at`` as the ledger tells it (0 before its first entry)."""
    return int(await session.scalar(select(balance_at_expr(product_id, warehouse_id, at))) or 0)


@dataclass(frozen=True)
class LevelAt:
    """A level as it stood at a past moment. What was promised then is not kept, so
    ``reserved`` and ``available`` are None."""

    id: int
    product_id: int
    warehouse_id: int
    quantity: int
    reorder_level: int
    updated_at: datetime
    """When its last entry at or before the moment was recorded."""
    reserved: None = None
    available: None = None


async def list_levels_at(
    session: AsyncSession, flt: LevelFilter, at: datetime, *, limit: int, cursor: str | None
) -> tuple[list[LevelAt], str | None]:
    """The levels as they stood at ``at``, rebuilt from the ledger, in the present list's
    order and with its cursors; a level with no entry by then is left out.

    Each level costs a few backward steps along the ledger's index, however long
    its history: nothing adds the ledger up.
    """
    quantity = balance_at_expr(StockLevel.product_id, StockLevel.warehouse_id, at)
    changed_at = _last_entry(
        StockMovement.created_at,
        StockLevel.product_id,
        StockLevel.warehouse_id,
        StockMovement.created_at <= at,
    )
    stmt = select(
        StockLevel.id,
        StockLevel.product_id,
        StockLevel.warehouse_id,
        quantity.label("quantity"),
        StockLevel.reorder_level.label("reorder_level"),
        changed_at.label("updated_at"),
    ).where(changed_at.is_not(None), *flt.conditions(quantity=quantity))
    rows, next_cursor = await paginate_rows(session, stmt, LEVEL_ORDER, limit=limit, cursor=cursor)
    return [
        LevelAt(
            id=row.id,
            product_id=row.product_id,
            warehouse_id=row.warehouse_id,
            quantity=int(row.quantity),
            reorder_level=int(row.reorder_level),
            updated_at=row.updated_at,
        )
        for row in rows
    ], next_cursor


@dataclass(frozen=True)
class HistoryEntry:
    """One ledger entry of a product and the product's total right after it."""

    id: int
    product_id: int
    warehouse_id: int
    kind: MovementKind
    quantity: int
    balance: int
    reference: str | None
    note: str | None
    unit_cost: Decimal | None
    user_id: int | None
    transfer_id: uuid.UUID | None
    created_at: datetime
    running_balance: int
    """On hand across the warehouses in scope (every warehouse, or the filtered one)."""


_ENTRY_COLUMNS = (
    StockMovement.id,
    StockMovement.product_id,
    StockMovement.warehouse_id,
    StockMovement.kind,
    StockMovement.quantity,
    StockMovement.balance,
    StockMovement.reference,
    StockMovement.note,
    StockMovement.unit_cost,
    StockMovement.user_id,
    StockMovement.transfer_id,
    StockMovement.created_at,
)


async def product_history(
    session: AsyncSession,
    product_id: int,
    flt: HistoryFilter,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[HistoryEntry], str | None]:
    """A product's ledger entries, oldest first, each with the running balance; NotFound
    for an unknown product.

    Every page is exact on its own: it starts from the total of the levels in scope
    just before its first entry (each level's balance there, one index step), read
    in the same statement as the page, then adds each entry's change.
    """
    await get_or_404(session, Product, product_id, "product")
    before = _before_page(flt, cursor)
    start: ColumnElement[int] = literal(0)
    if before is not None:
        levels = [StockLevel.product_id == product_id]
        if flt.warehouse_id is not None:
            levels.append(StockLevel.warehouse_id == flt.warehouse_id)
        level_balance = _last_entry(
            StockMovement.balance, StockLevel.product_id, StockLevel.warehouse_id, before
        )
        start = (
            select(func.coalesce(func.sum(func.coalesce(level_balance, 0)), 0))
            .where(*levels)
            .scalar_subquery()
        )
    stmt = select(*_ENTRY_COLUMNS, start.label("start_total")).where(
        *flt.ledger(product_id).conditions()
    )
    rows, next_cursor = await paginate_rows(
        session, stmt, HISTORY_ORDER, limit=limit, cursor=cursor
    )
    entries = []
    running = int(rows[0].start_total) if rows else 0
    for row in rows:
        running += row.quantity
        fields = {column.key: getattr(row, column.key) for column in _ENTRY_COLUMNS}
        entries.append(HistoryEntry(**fields, running_balance=running))
    return entries, next_cursor


def _before_page(flt: HistoryFilter, cursor: str | None) -> ColumnElement[bool] | None:
    """The entries before the page's first one, as a condition on the ledger; None when
    the page starts at the very beginning."""
    after: tuple[datetime, int] | None = None
    if cursor is not None:
        after = decode_cursor(HISTORY_ORDER, cursor)
    if flt.since is not None and (after is None or flt.since > after[0]):
        return StockMovement.created_at < flt.since
    if after is not None:
        moment, last_id = after
        # At or before the cursor's entry; bounded by created_at so the index
        # step starts at the moment, and only entries at that very moment are
        # sorted by id.
        return and_(
            StockMovement.created_at <= moment,
            or_(StockMovement.created_at < moment, StockMovement.id <= last_id),
        )
    return None

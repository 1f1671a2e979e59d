"""Units promised by live holds: the one definition that every reader and writer of a level uses.

A reservation line holds its units while its ``held_until`` is in the
future; nothing has to happen when it passes. A level's ``holds_until`` is
the latest expiry of any hold ever taken on it, so while it has passed (or
was never set) the level has no live hold and nobody needs to add them up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, case, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, with_expression
from sqlalchemy.orm.interfaces import LoaderOption

from inventory.models import ReservationLine, StockLevel

IntColumn = ColumnElement[int] | InstrumentedAttribute[int] | int

HOLD_FOREVER = datetime(9999, 12, 31, tzinfo=UTC)
"""``held_until`` of a line that holds until it is ended (a sales order's allocation)."""


def live_reserved(
    product_id: IntColumn, warehouse_id: IntColumn, now: datetime
) -> ColumnElement[int]:
    """The units held at one level by lines still live at ``now`` (one index range)."""
    return (
        select(func.coalesce(func.sum(ReservationLine.quantity), 0))
        .where(
            ReservationLine.product_id == product_id,
            ReservationLine.warehouse_id == warehouse_id,
            ReservationLine.held_until > now,
        )
        .scalar_subquery()
    )


def no_live_hold(now: datetime) -> ColumnElement[bool]:
    """True for a level row none of whose holds can still be live at ``now``."""
    return or_(StockLevel.holds_until.is_(None), StockLevel.holds_until <= now)


def level_reserved(now: datetime) -> ColumnElement[int]:
    """For a query over ``stock_levels``: each level's reserved units at ``now``; levels with
    no live hold cost no look at the reservations."""
    return case(
        (no_live_hold(now), 0),
        else_=live_reserved(StockLevel.product_id, StockLevel.warehouse_id, now),
    )


def with_reserved(now: datetime) -> LoaderOption:
    """Load ``StockLevel.reserved`` (and so ``available``) as of ``now`` with the levels."""
    return with_expression(StockLevel.reserved, level_reserved(now))


async def first_expiry(
    session: AsyncSession, levels: Sequence[tuple[int, int]], now: datetime
) -> datetime | None:
    """When the first hold live at ``now`` on these (product, warehouse) levels expires; None
    when none is live. Until then an answer showing their reserved units stays true."""
    if not levels:
        return None
    found: datetime | None = await session.scalar(
        select(func.min(ReservationLine.held_until)).where(
            tuple_(ReservationLine.product_id, ReservationLine.warehouse_id).in_(levels),
            ReservationLine.held_until > now,
        )
    )
    return found

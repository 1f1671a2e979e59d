"""Units promised by live holds: the one definition that every reader and writer of a level uses.

A reservation line holds its units while its ``held_until`` is in the
future; nothing has to happen when it passes. A level's ``holds_until`` is
the latest expiry of any hold taken on it, so while it has passed (or was
never set) the level has no live hold and nobody needs to add them up. A
sales order's allocation holds until it is ended (``HOLD_FOREVER``); when it
ships or is cancelled, ``settle_holds`` lowers ``holds_until`` back to the
holds still live.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, case, func, literal, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, with_expression
from sqlalchemy.orm.interfaces import LoaderOption

from inventory.models import ReservationLine, StockLevel, Warehouse
from inventory.models.columns import UTCDateTime

IntColumn = ColumnElement[int] | InstrumentedAttribute[int] | int

Level = tuple[int, int]
"""(product, warehouse)"""

Free = dict[Level, tuple[int, bool]]
"""(product, warehouse) -> (units free to promise, whether the warehouse is active)."""

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


async def read_free(
    session: AsyncSession,
    now: datetime,
    *,
    levels: Collection[Level] = (),
    products: Collection[int] = (),
) -> Free:
    """What each of these levels (and every level of ``products``) has free to promise at
    ``now``: its quantity less its live holds. Levels with no row are left out.

    Call it once the levels are locked: as a statement of its own after the lock, on
    PostgreSQL it sees every hold and movement committed before the lock was granted.
    """
    pair = tuple_(StockLevel.product_id, StockLevel.warehouse_id)
    scope = [
        *([pair.in_(sorted(levels))] if levels else []),
        *([StockLevel.product_id.in_(sorted(products))] if products else []),
    ]
    if not scope:
        return {}
    rows = await session.execute(
        select(
            StockLevel.product_id,
            StockLevel.warehouse_id,
            StockLevel.quantity - level_reserved(now),
            Warehouse.is_active,
        )
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .where(or_(*scope))
    )
    return {(p, w): (int(free), bool(active)) for p, w, free, active in rows}


async def extend_holds(session: AsyncSession, levels: Collection[Level], until: datetime) -> None:
    """Raise these levels' ``holds_until`` to ``until`` where it is earlier: holds now live
    there until then, so their decrements must add them up. Under the levels' locks."""
    if not levels:
        return
    await session.execute(
        update(StockLevel)
        .where(tuple_(StockLevel.product_id, StockLevel.warehouse_id).in_(sorted(levels)))
        .values(
            holds_until=case(
                (no_live_hold(until), literal(until, UTCDateTime)),
                else_=StockLevel.holds_until,
            ),
            updated_at=StockLevel.updated_at,
        )
        .execution_options(synchronize_session=False)
    )


async def settle_holds(session: AsyncSession, levels: Collection[Level], now: datetime) -> None:
    """Lower these levels' ``holds_until`` to the latest ``held_until`` of their lines still
    live at ``now`` (NULL when none is), after holds ended early: a level whose last hold
    has ended takes the one-statement decrement again.

    Under the levels' locks, after the ended lines are flushed: a new hold locks a
    level before it raises ``holds_until``, so none can slip in between the read and
    the write.
    """
    if not levels:
        return
    latest = (
        select(func.max(ReservationLine.held_until))
        .where(
            ReservationLine.product_id == StockLevel.product_id,
            ReservationLine.warehouse_id == StockLevel.warehouse_id,
            ReservationLine.held_until > now,
        )
        .scalar_subquery()
    )
    await session.execute(
        update(StockLevel)
        .where(tuple_(StockLevel.product_id, StockLevel.warehouse_id).in_(sorted(levels)))
        .values(holds_until=latest, updated_at=StockLevel.updated_at)
        .execution_options(synchronize_session=False)
    )

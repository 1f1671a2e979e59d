"""The rules of a stock count: what it covers, how a line is recorded, and how finishing
turns it into adjustments that neither lose nor double-count what moved meanwhile.

A line's figure is compared with the ledger's balance at the moment it was
counted (``inventory.stock.history``), not with the level now: a shipment
made after the shelf was counted is in the level but not on the count, and
the adjustment ``counted - balance at counted_at`` leaves it there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import lazyload

from inventory import events
from inventory.counts.filters import CountFilter
from inventory.counts.schemas import CountLineRecord, CountOpen
from inventory.errors import Conflict, NotFound, ValidationFailed, field_error
from inventory.kit.pagination import SortOrder, paginate
from inventory.kit.persistence import get_or_404
from inventory.models import (
    Category,
    CountStatus,
    Product,
    StockCount,
    StockCountLine,
    StockLevel,
    Warehouse,
)
from inventory.models.columns import utcnow
from inventory.stock.history import balance_at, balance_at_expr
from inventory.stock.schemas import MovementCreate, RecordedKind
from inventory.stock.service import ledger_now, lock_levels, record_movement

NOUN = "count"
COUNT_ORDER = SortOrder("-id", StockCount.id, StockCount.id, "int", descending=True)
"""Newest first."""


def count_reference(count_id: int) -> str:
    """The ``reference`` of the adjustments a count's finish records."""
    return f"count:{count_id}"


@dataclass
class FinishedCount:
    count: StockCount
    movement_ids: list[int]


async def open_count(session: AsyncSession, user_id: int | None, data: CountOpen) -> StockCount:
    """Open a count of the products ``data`` selects; each line expects the ledger's
    balance at the count's start."""
    warehouse = await session.get(Warehouse, data.warehouse_id)
    if warehouse is None:
        raise _missing("warehouse_id", f"warehouse {data.warehouse_id} does not exist")
    started_at = await ledger_now(session)
    if data.product_ids is not None:
        product_ids = await _named_products(session, data.product_ids)
    else:
        product_ids = await _stocked_products(session, data.warehouse_id, data.category_id)
    if not product_ids:
        where = "category_id" if data.category_id is not None else "warehouse_id"
        raise ValidationFailed(
            "There is nothing to count.",
            [
                field_error(
                    (where,),
                    f"no active product has a stock level in warehouse {data.warehouse_id}"
                    + ("" if data.category_id is None else f" in category {data.category_id}"),
                    "nothing_to_count",
                )
            ],
        )
    rows = await session.execute(
        select(Product.id, balance_at_expr(Product.id, data.warehouse_id, started_at)).where(
            Product.id.in_(product_ids)
        )
    )
    expected = {product_id: int(balance) for product_id, balance in rows}
    count = StockCount(
        status=CountStatus.open,
        warehouse_id=data.warehouse_id,
        started_at=started_at,
        user_id=user_id,
        lines=[
            StockCountLine(product_id=product_id, expected=expected[product_id])
            for product_id in sorted(product_ids)
        ],
    )
    session.add(count)
    await session.flush()
    return count


async def _named_products(session: AsyncSession, named: Sequence[int]) -> list[int]:
    wanted = list(dict.fromkeys(named))
    rows = await session.execute(
        select(Product.id, Product.is_active).where(Product.id.in_(wanted))
    )
    active: dict[int, bool] = dict(rows.all())
    missing = [
        field_error(("product_ids", index), f"product {pid} does not exist", "missing_reference")
        for index, pid in enumerate(named)
        if pid not in active
    ]
    if missing:
        raise ValidationFailed("The count names products that do not exist.", missing)
    inactive = [pid for pid in wanted if not active[pid]]
    if inactive:
        listed = ", ".join(str(pid) for pid in inactive)
        raise Conflict(f"inactive products cannot be counted (their stock cannot move): {listed}")
    return wanted


async def _stocked_products(
    session: AsyncSession, warehouse_id: int, category_id: int | None
) -> list[int]:
    """The active products with a level in the warehouse (of the category, if given)."""
    stmt = (
        select(Product.id)
        .join(StockLevel, StockLevel.product_id == Product.id)
        .where(StockLevel.warehouse_id == warehouse_id, Product.is_active.is_(True))
    )
    if category_id is not None:
        if await session.get(Category, category_id) is None:
            raise _missing("category_id", f"category {category_id} does not exist")
        stmt = stmt.where(Product.category_id == category_id)
    return list(await session.scalars(stmt.order_by(Product.id)))


def _missing(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        "The count refers to entries that do not exist.",
        [field_error((field,), message, "missing_reference")],
    )


async def get_count(session: AsyncSession, count_id: int) -> StockCount:
    return await get_or_404(session, StockCount, count_id, NOUN)


async def list_counts(
    session: AsyncSession, flt: CountFilter, *, limit: int, cursor: str | None
) -> tuple[list[StockCount], str | None]:
    """Counts, newest first."""
    stmt = select(StockCount).where(*flt.conditions())
    return await paginate(session, stmt, COUNT_ORDER, limit=limit, cursor=cursor)


async def record_line(
    session: AsyncSession, count_id: int, product_id: int, data: CountLineRecord
) -> StockCountLine:
    """Record (or record again) what was found of one product, as of now."""
    count = await _open_count(session, count_id, "recorded")
    line = await session.scalar(
        select(StockCountLine).where(
            StockCountLine.count_id == count_id, StockCountLine.product_id == product_id
        )
    )
    if line is None:
        raise NotFound(f"product {product_id} is not in count {count_id}")
    counted_at = await ledger_now(session)
    line.expected = await balance_at(session, product_id, count.warehouse_id, counted_at)
    line.counted = data.counted
    line.counted_at = counted_at
    line.difference = data.counted - line.expected
    await session.flush()
    return line


async def finish_count(session: AsyncSession, user_id: int | None, count_id: int) -> FinishedCount:
    """Record one adjustment per counted line that differs from the ledger at its moment.

    All or nothing, in a savepoint: a refused adjustment (below zero, below what
    is reserved, an inactive product) refuses the finish and undoes every
    adjustment made before it, whatever the caller then does with its
    transaction (GraphQL answers the refusal and commits). The levels are locked
    first, in the one order every writer of several levels uses, so the balances
    read next are final.
    """
    async with events.all_or_nothing(session):
        count = await _open_count(session, count_id, "finished")
        counted = list(
            await session.scalars(
                select(StockCountLine)
                .where(StockCountLine.count_id == count_id, StockCountLine.counted.is_not(None))
                .order_by(StockCountLine.product_id)
            )
        )
        await lock_levels(session, [(line.product_id, count.warehouse_id) for line in counted])
        movement_ids = []
        for line in counted:
            assert line.counted is not None
            assert line.counted_at is not None
            line.expected = await balance_at(
                session, line.product_id, count.warehouse_id, line.counted_at
            )
            line.difference = line.counted - line.expected
            if line.difference == 0:
                continue
            adjustment = MovementCreate.model_validate(
                {
                    "product_id": line.product_id,
                    "warehouse_id": count.warehouse_id,
                    "kind": RecordedKind.adjustment,
                    "quantity": line.difference,
                    "reference": count_reference(count.id),
                    "note": f"counted {line.counted} at {line.counted_at.isoformat()}, "
                    f"when the ledger said {line.expected}",
                }
            )
            result = await record_movement(session, user_id, adjustment)
            movement_ids.append(result.movement.id)
        count.status = CountStatus.finished
        count.finished_at = utcnow()
        await session.flush()
        await session.refresh(count, ["lines"])
    return FinishedCount(count, movement_ids)


async def cancel_count(session: AsyncSession, count_id: int) -> StockCount:
    """Cancel an open count; cancelling a cancelled one changes nothing."""
    count = await get_or_404(session, StockCount, count_id, NOUN, for_update=True)
    if count.status is CountStatus.cancelled:
        return count
    if count.status is CountStatus.finished:
        raise Conflict(f"count {count_id} is finished; it cannot be cancelled")
    count.status = CountStatus.cancelled
    count.finished_at = utcnow()
    await session.flush()
    return count


async def _open_count(session: AsyncSession, count_id: int, action: str) -> StockCount:
    """The count, locked until commit (its writes happen one at a time); Conflict unless open.

    Its lines are not loaded: recording one line of a large count reads that line only.
    """
    count = await session.scalar(
        select(StockCount)
        .where(StockCount.id == count_id)
        .with_for_update()
        .options(lazyload(StockCount.lines))
    )
    if count is None:
        raise NotFound(f"{NOUN} {count_id} does not exist")
    if count.status is not CountStatus.open:
        raise Conflict(f"count {count_id} is {count.status.value}; it cannot be {action}")
    return count

"""The ledger's rules: every change of a level is one atomic statement plus its ledger row.

Decrements are conditional updates (``... WHERE quantity >= n``), so stock can
never go below zero however many requests race, on SQLite and on
PostgreSQL; the CHECK constraint on the table backs this up. Transfers lock
both level rows in primary-key order first, so opposing transfers cannot
deadlock. Each movement or transfer runs in a SAVEPOINT: it happens whole or
not at all.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import ColumnElement, Update, func, literal, select, tuple_, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from inventory import events
from inventory.errors import Conflict, InsufficientStock
from inventory.kit.money import weighted_average
from inventory.kit.pagination import SortOrder, paginate
from inventory.kit.persistence import get_or_404, insert_for
from inventory.models import MovementKind, Product, StockLevel, StockMovement, Warehouse
from inventory.models.columns import UTCDateTime, utcnow
from inventory.stock import holds
from inventory.stock.filters import LedgerFilter, LevelFilter
from inventory.stock.schemas import MAX_QUANTITY, MovementCreate, TransferCreate

logger = logging.getLogger(__name__)

LEVEL_ORDER = SortOrder("id", StockLevel.id, StockLevel.id, "int")
LEDGER_ORDER = SortOrder(
    "-id", StockMovement.id, StockMovement.id, "int", descending=True, max_id=2**63 - 1
)


@dataclass
class MovementResult:
    movement: StockMovement


@dataclass
class TransferResult:
    id: uuid.UUID
    product_id: int
    from_warehouse_id: int
    to_warehouse_id: int
    quantity: int
    reference: str | None
    created_at: datetime
    movements: list[StockMovement]


async def record_movement(
    session: AsyncSession, user_id: int | None, data: MovementCreate
) -> MovementResult:
    """Receive, ship or adjust stock; InsufficientStock (409) when it would go below zero."""
    async with session.begin_nested():
        product = await _movable_product(session, data.product_id)
        await _warehouse(session, data.warehouse_id, receiving=data.delta > 0)
        level = await _change_level(
            session, data.product_id, data.warehouse_id, data.delta, data.unit_cost
        )
        movement = StockMovement(
            product_id=data.product_id,
            warehouse_id=data.warehouse_id,
            kind=MovementKind(data.kind.value),
            quantity=data.delta,
            balance=level.quantity,
            reserved=level.reserved,
            unit_cost=data.unit_cost,
            average_cost=level.average_cost,
            reference=data.reference,
            note=data.note,
            user_id=user_id,
            created_at=level.at,
        )
        session.add(movement)
        await session.flush()
    events.record(
        session,
        level.change(movement.id),
        *_low_stock(product, data.warehouse_id, level.quantity, data.delta),
    )
    return MovementResult(movement)


async def transfer_stock(
    session: AsyncSession, user_id: int | None, data: TransferCreate
) -> TransferResult:
    """Move stock between warehouses: both ledger legs and both levels, or nothing.

    The units arrive at the source's average cost, averaged into the target's.
    """
    async with session.begin_nested():
        product = await _movable_product(session, data.product_id)
        await _warehouse(session, data.from_warehouse_id, receiving=False)
        await _warehouse(session, data.to_warehouse_id, receiving=True)
        await _lock_levels(session, data.product_id, (data.from_warehouse_id, data.to_warehouse_id))
        source = await _change_level(
            session, data.product_id, data.from_warehouse_id, -data.quantity
        )
        target = await _change_level(
            session, data.product_id, data.to_warehouse_id, data.quantity, source.average_cost
        )
        # Both legs at the later stamp, taken while both levels were locked.
        transfer_id, now = uuid.uuid4(), target.at
        legs = [
            StockMovement(
                product_id=data.product_id,
                warehouse_id=warehouse_id,
                kind=kind,
                quantity=quantity,
                balance=balance,
                reserved=level.reserved,
                unit_cost=source.average_cost,
                average_cost=level.average_cost,
                reference=data.reference,
                user_id=user_id,
                transfer_id=transfer_id,
                created_at=now,
            )
            for warehouse_id, kind, quantity, balance, level in (
                (
                    data.from_warehouse_id,
                    MovementKind.transfer_out,
                    -data.quantity,
                    source.quantity,
                    source,
                ),
                (
                    data.to_warehouse_id,
                    MovementKind.transfer_in,
                    data.quantity,
                    target.quantity,
                    target,
                ),
            )
        ]
        session.add_all(legs)
        await session.flush()
    events.record(
        session,
        *(level.change(leg.id) for leg, level in zip(legs, (source, target), strict=True)),
        *_low_stock(product, data.from_warehouse_id, source.quantity, -data.quantity),
    )
    return TransferResult(
        id=transfer_id,
        product_id=data.product_id,
        from_warehouse_id=data.from_warehouse_id,
        to_warehouse_id=data.to_warehouse_id,
        quantity=data.quantity,
        reference=data.reference,
        created_at=now,
        movements=legs,
    )


async def list_levels(
    session: AsyncSession,
    flt: LevelFilter,
    *,
    limit: int,
    cursor: str | None,
    now: datetime | None = None,
) -> tuple[list[StockLevel], str | None]:
    """A page of levels with what live holds reserve at ``now`` (the present by default)."""
    at = utcnow() if now is None else now
    stmt = select(StockLevel).where(*flt.conditions()).options(holds.with_reserved(at))
    return await paginate(session, stmt, LEVEL_ORDER, limit=limit, cursor=cursor)


async def levels_page(
    session: AsyncSession, flt: LevelFilter, *, limit: int, cursor: str | None
) -> tuple[list[StockLevel], str | None, datetime | None]:
    """``list_levels``, and when the page stops being true without a write: the moment the
    first hold it counts expires (None: it shows no live hold)."""
    now = utcnow()
    items, next_cursor = await list_levels(session, flt, limit=limit, cursor=cursor, now=now)
    held = [(i.product_id, i.warehouse_id) for i in items if i.reserved]
    return items, next_cursor, await holds.first_expiry(session, held, now)


async def list_movements(
    session: AsyncSession, flt: LedgerFilter, *, limit: int, cursor: str | None
) -> tuple[list[StockMovement], str | None]:
    """The ledger, newest first."""
    stmt = select(StockMovement).where(*flt.conditions())
    return await paginate(session, stmt, LEDGER_ORDER, limit=limit, cursor=cursor)


class LedgerEntry(NamedTuple):
    """The few columns of a ledger entry that a live feed sends."""

    id: int
    product_id: int
    warehouse_id: int
    balance: int
    reserved: int | None = None
    """The level's units held by live reservations right after the entry (None: unknown)."""


async def ledger_after(session: AsyncSession, after_id: int, *, limit: int) -> list[LedgerEntry]:
    """The ledger entries with ids above ``after_id`` that have committed, oldest first."""
    rows = await session.execute(
        select(
            StockMovement.id,
            StockMovement.product_id,
            StockMovement.warehouse_id,
            StockMovement.balance,
            StockMovement.reserved,
        )
        .where(StockMovement.id > after_id)
        .order_by(StockMovement.id)
        .limit(limit)
    )
    return [LedgerEntry(*row) for row in rows]


async def last_movement_id(session: AsyncSession) -> int:
    """The highest committed movement id; 0 for an empty ledger."""
    return int(await session.scalar(select(func.max(StockMovement.id))) or 0)


async def _movable_product(session: AsyncSession, product_id: int) -> Product:
    product = await get_or_404(session, Product, product_id, "product")
    if not product.is_active:
        raise Conflict(f"product {product_id} is inactive; stock cannot move")
    return product


async def _warehouse(session: AsyncSession, warehouse_id: int, *, receiving: bool) -> Warehouse:
    warehouse = await get_or_404(session, Warehouse, warehouse_id, "warehouse")
    if receiving and not warehouse.is_active:
        raise Conflict(f"warehouse {warehouse_id} is inactive; it can only ship stock out")
    return warehouse


async def _lock_levels(
    session: AsyncSession, product_id: int, warehouse_ids: tuple[int, ...]
) -> None:
    await lock_levels(session, [(product_id, w) for w in warehouse_ids], create=True)


async def lock_levels(
    session: AsyncSession, levels: Iterable[tuple[int, int]], *, create: bool = False
) -> list[StockLevel]:
    """Lock the (product, warehouse) levels in primary-key order; they are returned so.

    Every transaction that locks more than one level does it in the same
    order, so two opposing writes wait for each other instead of
    deadlocking. ``create`` first makes missing rows (at 0); otherwise
    missing levels are left out. (SQLite ignores FOR UPDATE; its writers are
    serialised.)
    """
    pairs = sorted(set(levels))
    if not pairs:
        return []
    if create:
        now = utcnow()
        ensure = (
            insert_for(session, StockLevel)
            .values(
                [
                    {
                        "product_id": p,
                        "warehouse_id": w,
                        "quantity": 0,
                        "movement_count": 0,
                        "updated_at": now,
                    }
                    for p, w in pairs
                ]
            )
            .on_conflict_do_nothing(index_elements=["product_id", "warehouse_id"])
        )
        await session.execute(ensure)
    rows = await session.scalars(
        select(StockLevel)
        .where(tuple_(StockLevel.product_id, StockLevel.warehouse_id).in_(pairs))
        .order_by(StockLevel.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(rows)


@dataclass(frozen=True)
class ChangedLevel:
    """A level right after one change: its quantity and how many movements it now has."""

    product_id: int
    warehouse_id: int
    quantity: int
    movement_count: int
    reserved: int
    at: datetime
    """When the change was made: its ledger entry's ``created_at`` (see ``_ledger_clock``)."""
    average_cost: Decimal
    """The level's average unit cost after the change."""

    def change(self, movement_id: int) -> events.StockChanged:
        return events.StockChanged(
            self.product_id,
            self.warehouse_id,
            self.quantity,
            movement_id,
            self.movement_count,
            self.reserved,
        )


async def _change_level(
    session: AsyncSession,
    product_id: int,
    warehouse_id: int,
    delta: int,
    unit_cost: Decimal | None = None,
) -> ChangedLevel:
    """Add ``delta`` to one level, and one to its movement count: one statement, or, for a
    decrement where a hold may be live, or units arriving at a cost, the row's lock and
    then one statement."""
    now = utcnow()
    stamp = _ledger_clock(session, now)
    changed = (
        StockLevel.quantity,
        StockLevel.movement_count,
        StockLevel.updated_at,
        StockLevel.average_cost,
    )
    if delta > 0:
        costed: dict[str, Decimal] = {}
        if unit_cost is not None:
            # The new average depends on what is there: read it under the lock.
            [current] = await lock_levels(session, [(product_id, warehouse_id)], create=True)
            costed["average_cost"] = weighted_average(
                current.quantity, current.average_cost, delta, unit_cost
            )
        upsert = insert_for(session, StockLevel).values(
            product_id=product_id,
            warehouse_id=warehouse_id,
            quantity=delta,
            movement_count=1,
            updated_at=stamp,
            **costed,
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=["product_id", "warehouse_id"],
            set_={
                "quantity": StockLevel.quantity + delta,
                "movement_count": StockLevel.movement_count + 1,
                "updated_at": stamp,
                **costed,
            },
            where=StockLevel.quantity <= MAX_QUANTITY - delta,
        ).returning(*changed, StockLevel.holds_until)
        row = (await session.execute(upsert)).one_or_none()
        if row is None:
            raise Conflict(f"the level would exceed {MAX_QUANTITY} units")
        reserved = 0
        if row[4] is not None and row[4] > now:
            promised = holds.live_reserved(product_id, warehouse_id, now)
            reserved = int(await session.scalar(select(promised)) or 0)
        return ChangedLevel(
            product_id, warehouse_id, int(row[0]), int(row[1]), reserved, row[2], row[3]
        )

    level = (StockLevel.product_id == product_id, StockLevel.warehouse_id == warehouse_id)

    def decrement(promised: ColumnElement[int], *enough: ColumnElement[bool]) -> Update:
        return (
            update(StockLevel)
            .where(*level, *enough)
            .values(
                quantity=StockLevel.quantity + delta,
                movement_count=StockLevel.movement_count + 1,
                updated_at=stamp,
            )
            .returning(*changed, promised)
            .execution_options(synchronize_session=False)
        )

    # Where no hold can be live, the row alone decides, in one statement.
    no_hold = holds.no_live_hold(now)
    row = (
        await session.execute(decrement(literal(0), StockLevel.quantity >= -delta, no_hold))
    ).one_or_none()
    if row is None:
        # Holds may be live: lock the row first, so the sum of the holds read
        # next is the one that stands (a hold locks the row before it adds up).
        await session.execute(select(StockLevel.id).where(*level).with_for_update())
        promised = holds.live_reserved(product_id, warehouse_id, now)
        row = (
            await session.execute(decrement(promised, StockLevel.quantity + delta >= promised))
        ).one_or_none()
    if row is None:
        available = await session.scalar(
            select(StockLevel.quantity - holds.level_reserved(now)).where(*level)
        )
        raise InsufficientStock(
            product_id=product_id,
            warehouse_id=warehouse_id,
            available=max(available or 0, 0),
            requested=-delta,
        )
    return ChangedLevel(
        product_id, warehouse_id, int(row[0]), int(row[1]), int(row[4]), row[2], row[3]
    )


def _ledger_clock(session: AsyncSession, now: datetime) -> ColumnElement[datetime]:
    """The moment a change is stamped with, taken once the level's row is locked.

    A level's ledger entries must be in time order as they are in lock order,
    or "the balance at T" would pick the wrong one. On PostgreSQL the
    server's clock gives that for every worker on every machine (their own
    clocks may disagree by more than the time between two changes); on
    SQLite every writer is on one machine and writes in turn, so this
    process's clock, read after its turn came, does.
    """
    if session.get_bind().dialect.name == "postgresql":
        return func.clock_timestamp(type_=UTCDateTime)
    return literal(now, UTCDateTime)


async def ledger_now(session: AsyncSession) -> datetime:
    """The ledger's present moment, on the clock its entries are stamped with."""
    now = utcnow()
    found: datetime | None = await session.scalar(select(_ledger_clock(session, now)))
    return now if found is None else found


def _low_stock(
    product: Product, warehouse_id: int, level: int, delta: int
) -> list[events.LowStock]:
    """The level, when this change took it from above the reorder level to at or below it."""
    if delta < 0 and level <= product.reorder_level < level - delta:
        return [events.LowStock(product.id, warehouse_id, level, product.reorder_level)]
    return []


def report_low_stock(event: events.LowStock) -> None:
    """Tell the operators a level went low; a job, so a broker carries it past a restart."""
    logger.warning(
        "low stock: product %s in warehouse %s is at %s (reorder level %s)",
        event.product_id,
        event.warehouse_id,
        event.quantity,
        event.reorder_level,
    )


@dataclass(frozen=True)
class LedgerDiscrepancy:
    product_id: int
    warehouse_id: int
    level: int
    ledger_sum: int


async def find_ledger_discrepancies(session: AsyncSession) -> list[LedgerDiscrepancy]:
    """Every (product, warehouse) whose level differs from the sum of its movements.

    One statement, so it reads one snapshot even while movements are recorded.
    """
    both = union_all(
        select(
            StockLevel.product_id,
            StockLevel.warehouse_id,
            StockLevel.quantity.label("level"),
            literal(0).label("moved"),
        ),
        select(
            StockMovement.product_id,
            StockMovement.warehouse_id,
            literal(0).label("level"),
            StockMovement.quantity.label("moved"),
        ),
    ).subquery()
    level, moved = func.sum(both.c.level), func.sum(both.c.moved)
    rows = await session.execute(
        select(both.c.product_id, both.c.warehouse_id, level, moved)
        .group_by(both.c.product_id, both.c.warehouse_id)
        .having(level != moved)
        .order_by(both.c.product_id, both.c.warehouse_id)
    )
    return [LedgerDiscrepancy(p, w, int(lv), int(mv)) for p, w, lv, mv in rows]

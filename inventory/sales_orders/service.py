"""The rules of sales orders: create, confirm (allocate), allocate backorders, ship, cancel.

An order's allocations are one reservation without expiry (``sales_order_id``
set, ``reference`` the order's number) whose lines point at the order lines
and hold until ended (``holds.HOLD_FOREVER``). For each order line, its live
reservation lines add up to ``allocated - shipped``; the rest of the line,
``quantity - allocated``, is backordered. A reservation line's quantity never
changes: shipping part of one ends it and adds a line for what is left.

Every write locks the order's row first, then the levels it touches in
primary-key order (as holds and transfers do), so allocations draw on what is
free however many orders, holds and shipments race, and no two writes wait
for each other in opposite orders.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inventory import events
from inventory.errors import (
    NotAllocated,
    NotFound,
    not_allocated,
)
from inventory.kit.pagination import SortOrder, paginate
from inventory.kit.persistence import get_or_404
from inventory.models import (
    Product,
    Reservation,
    ReservationLine,
    ReservationStatus,
    SalesOrder,
    SalesOrderLine,
    SalesOrderStatus,
)
from inventory.models.columns import utcnow
from inventory.orders import references
from inventory.orders.filters import SalesOrderFilter
from inventory.orders.numbering import next_number
from inventory.orders.transitions import require_status
from inventory.sales_orders.schemas import SalesOrderCreate, SalesOrderShip
from inventory.stock import holds
from inventory.stock import service as stock
from inventory.stock.schemas import MovementCreate, RecordedKind

ORDER = SortOrder("-id", SalesOrder.id, SalesOrder.id, "int", descending=True)

OPEN = (SalesOrderStatus.confirmed, SalesOrderStatus.partially_shipped)
"""Confirmed and not yet closed: what may be allocated and shipped."""

CANCELLABLE = (SalesOrderStatus.draft, *OPEN)


async def create(session: AsyncSession, user_id: int | None, data: SalesOrderCreate) -> SalesOrder:
    """A draft order with the next ``SO-`` number; a line without a price takes its product's.

    ValidationFailed (422) names each line whose product or warehouse does not
    exist; Conflict (409) for an inactive product.
    """
    async with session.begin_nested():
        products = await references.line_products(session, [ln.product_id for ln in data.lines])
        await references.line_warehouses(session, [ln.warehouse_id for ln in data.lines])
        references.refuse_inactive(products.values())
        order = SalesOrder(
            number=await next_number(session, "SO"),
            status=SalesOrderStatus.draft,
            customer_reference=data.customer_reference,
            user_id=user_id,
            lines=[
                SalesOrderLine(
                    product_id=line.product_id,
                    warehouse_id=line.warehouse_id,
                    quantity=line.quantity,
                    unit_price=products[line.product_id].unit_price
                    if line.unit_price is None
                    else line.unit_price,
                    allocated=0,
                    shipped=0,
                )
                for line in data.lines
            ],
        )
        session.add(order)
        await session.flush()
    return order


async def confirm(session: AsyncSession, user_id: int | None, order_id: int) -> SalesOrder:
    """Confirm a draft and allocate each line what its level has free; the rest is
    backordered. InvalidTransition (409) unless the order is a draft."""
    async with events.all_or_nothing(session):
        order = await _locked(session, order_id)
        require_status(_noun(order), order.status, (SalesOrderStatus.draft,), "be confirmed")
        now = utcnow()
        order.status = SalesOrderStatus.confirmed
        order.confirmed_at = now
        touched = await _allocate(session, user_id, order)
        await session.flush()
    events.record(session, *(events.HoldsChanged(p, w) for p, w in touched))
    return order


async def allocate(session: AsyncSession, user_id: int | None, order_id: int) -> SalesOrder:
    """Allocate backordered units from what has become free since. InvalidTransition (409)
    unless the order is confirmed or partially shipped."""
    async with events.all_or_nothing(session):
        order = await _locked(session, order_id)
        require_status(_noun(order), order.status, OPEN, "allocate stock")
        touched = await _allocate(session, user_id, order)
        await session.flush()
    events.record(session, *(events.HoldsChanged(p, w) for p, w in touched))
    return order


async def ship(
    session: AsyncSession, user_id: int | None, order_id: int, data: SalesOrderShip
) -> SalesOrder:
    """Ship allocated units line by line: one ``shipment`` per line, referencing the order's
    number, all or none.

    InvalidTransition (409) unless the order is confirmed or partially shipped;
    ValidationFailed (422) for a line not on the order; NotAllocated (409)
    naming every line that asks for more than is allocated to it and not
    shipped.
    """
    async with events.all_or_nothing(session):
        order = await _locked(session, order_id)
        require_status(_noun(order), order.status, OPEN, "ship")
        lines = {line.id: line for line in order.lines}
        references.named_lines(_noun(order), lines, [asked.line_id for asked in data.lines])
        short = []
        for index, asked in enumerate(data.lines):
            shippable = _shippable(lines[asked.line_id])
            if asked.quantity > shippable:
                short.append(not_allocated(("lines", index), shippable, asked.quantity))
        if short:
            raise NotAllocated(
                f"{len(short)} of {len(data.lines)} lines ship more than is allocated; "
                "none shipped",
                short,
            )
        levels = sorted({_level(lines[asked.line_id]) for asked in data.lines})
        await stock.lock_levels(session, levels)
        now = utcnow()
        reservation = await _allocation(session, order)
        assert reservation is not None  # every line asked for has units allocated
        live = _live_lines(reservation)
        # The shipped lines' holds end and what stays allocated is held by a new line,
        # before the shipments: each then finds the level's holds as they will stand.
        for asked in data.lines:
            line = lines[asked.line_id]
            for held in live[line.id]:
                held.held_until = None
            left = _shippable(line) - asked.quantity
            if left:
                reservation.lines.append(_holding(line, left))
        await session.flush()
        moved = []
        for asked in data.lines:
            line = lines[asked.line_id]
            shipment = await stock.record_movement(
                session,
                user_id,
                MovementCreate(
                    product_id=line.product_id,
                    warehouse_id=line.warehouse_id,
                    kind=RecordedKind.shipment,
                    quantity=asked.quantity,
                    reference=order.number,
                ),
            )
            movement_id = shipment.movement.id
            for held in live[line.id]:
                held.movement_id = movement_id
            line.shipped += asked.quantity
            moved.append(
                events.OrderLineMoved(
                    line.id, line.product_id, line.warehouse_id, asked.quantity, movement_id
                )
            )
        if all(line.shipped == line.quantity for line in order.lines):
            order.status = SalesOrderStatus.shipped
            order.closed_at = now
            reservation.status = ReservationStatus.confirmed
            reservation.ended_at = now
        else:
            order.status = SalesOrderStatus.partially_shipped
        await session.flush()
        await holds.settle_holds(session, levels, now)
        events.record(
            session,
            events.SalesOrderShipped(order.id, order.number, order.status.value, tuple(moved)),
            *(events.HoldsChanged(p, w) for p, w in levels),
        )
    return order


async def cancel(session: AsyncSession, order_id: int) -> SalesOrder:
    """Cancel the order: what is allocated and not shipped is free again; what shipped stays
    shipped. InvalidTransition (409) once it is shipped or cancelled."""
    async with events.all_or_nothing(session):
        order = await _locked(session, order_id)
        require_status(_noun(order), order.status, CANCELLABLE, "be cancelled")
        now = utcnow()
        reservation = await _allocation(session, order)
        levels: list[tuple[int, int]] = []
        if reservation is not None and reservation.status is ReservationStatus.held:
            held = [h for h in reservation.lines if h.held_until is not None]
            levels = sorted({(h.product_id, h.warehouse_id) for h in held})
            await stock.lock_levels(session, levels)
            for h in held:
                h.held_until = None
            reservation.status = ReservationStatus.released
            reservation.ended_at = now
        for line in order.lines:
            line.allocated = line.shipped
        order.status = SalesOrderStatus.cancelled
        order.closed_at = now
        await session.flush()
        await holds.settle_holds(session, levels, now)
    events.record(session, *(events.HoldsChanged(p, w) for p, w in levels))
    return order


async def get(session: AsyncSession, order_id: int) -> SalesOrder:
    return await get_or_404(session, SalesOrder, order_id, "sales order")


async def list_orders(
    session: AsyncSession, flt: SalesOrderFilter, *, limit: int, cursor: str | None
) -> tuple[list[SalesOrder], str | None]:
    """Sales orders, newest first."""
    stmt = select(SalesOrder).where(*flt.conditions())
    return await paginate(session, stmt, ORDER, limit=limit, cursor=cursor)


async def _locked(session: AsyncSession, order_id: int) -> SalesOrder:
    """The order with its lines as they stand once its row is locked: writes to one order
    take turns."""
    order = await session.scalar(
        select(SalesOrder)
        .where(SalesOrder.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound(f"sales order {order_id} does not exist")
    return order


async def _allocation(session: AsyncSession, order: SalesOrder) -> Reservation | None:
    """The reservation holding the order's allocations; None until something is allocated."""
    found: Reservation | None = await session.scalar(
        select(Reservation)
        .where(Reservation.sales_order_id == order.id)
        .execution_options(populate_existing=True)
    )
    return found


async def _allocate(
    session: AsyncSession, user_id: int | None, order: SalesOrder
) -> list[tuple[int, int]]:
    """Allocate each line with backorders what its level has free, lines sharing a level
    drawing in line order; the levels it allocated from."""
    wanted = [line for line in order.lines if line.allocated < line.quantity]
    if not wanted:
        return []
    # A product made inactive since the order was taken can never ship: allocating it
    # would only hold units for nothing.
    references.refuse_inactive(
        await session.scalars(
            select(Product).where(Product.id.in_({line.product_id for line in wanted}))
        )
    )
    await stock.lock_levels(session, {_level(line) for line in wanted})
    free = await holds.read_free(session, utcnow(), levels={_level(line) for line in wanted})
    reservation = await _allocation(session, order)
    live = {} if reservation is None else _live_lines(reservation)
    added = []
    for line in wanted:
        units, active = free.get(_level(line), (0, True))
        taken = min(max(units, 0), line.quantity - line.allocated)
        if taken == 0:
            continue
        free[_level(line)] = (units - taken, active)
        line.allocated += taken
        # One live line per order line: what it held before and what it takes now.
        for held in live.get(line.id, ()):
            held.held_until = None
        added.append(_holding(line, _shippable(line)))
    if not added:
        return []
    if reservation is None:
        session.add(
            Reservation(
                status=ReservationStatus.held,
                reference=order.number,
                expires_at=None,
                created_at=utcnow(),
                user_id=user_id,
                sales_order_id=order.id,
                lines=added,
            )
        )
    else:
        reservation.lines.extend(added)
    touched = sorted({(line.product_id, line.warehouse_id) for line in added})
    await holds.extend_holds(session, touched, holds.HOLD_FOREVER)
    return touched


def _holding(line: SalesOrderLine, quantity: int) -> ReservationLine:
    """A reservation line holding ``quantity`` units for ``line`` until it is ended."""
    return ReservationLine(
        product_id=line.product_id,
        warehouse_id=line.warehouse_id,
        quantity=quantity,
        held_until=holds.HOLD_FOREVER,
        sales_order_line_id=line.id,
    )


def _live_lines(reservation: Reservation) -> dict[int, list[ReservationLine]]:
    """The reservation's lines still holding, by the order line they hold for."""
    live: dict[int, list[ReservationLine]] = defaultdict(list)
    for held in reservation.lines:
        if held.held_until is not None and held.sales_order_line_id is not None:
            live[held.sales_order_line_id].append(held)
    return live


def _shippable(line: SalesOrderLine) -> int:
    return line.allocated - line.shipped


def _level(line: SalesOrderLine) -> tuple[int, int]:
    return (line.product_id, line.warehouse_id)


def _noun(order: SalesOrder) -> str:
    return f"sales order {order.number}"

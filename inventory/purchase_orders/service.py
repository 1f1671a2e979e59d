"""The rules of purchase orders: create and edit a draft, place it (its units go on order),
receive it line by line into the ledger, cancel what is still open.

A placed order's open units (``quantity - received`` of each line) are counted
in ``on_order`` of its warehouse's levels, changed only here and only under the
levels' locks. Every step that touches the levels locks the order row first,
then the levels in primary-key order (the order every multi-level write uses),
so two receipts of one order take turns and never deadlock with other writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inventory import events
from inventory.errors import (
    Conflict,
    OverReceipt,
    over_receipt,
)
from inventory.kit.pagination import SortOrder, paginate
from inventory.kit.persistence import get_or_404
from inventory.models import (
    Product,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderStatus,
    StockLevel,
    Supplier,
    Warehouse,
)
from inventory.models.columns import utcnow
from inventory.orders import references
from inventory.orders.filters import PurchaseOrderFilter
from inventory.orders.numbering import next_number
from inventory.orders.transitions import require_status
from inventory.purchase_orders.schemas import (
    PurchaseOrderCreate,
    PurchaseOrderLineCreate,
    PurchaseOrderReceive,
    PurchaseOrderUpdate,
)
from inventory.stock import service as stock
from inventory.stock.schemas import MovementCreate, RecordedKind

NOUN = "purchase order"
ORDER = SortOrder("-id", PurchaseOrder.id, PurchaseOrder.id, "int", descending=True)
"""Newest first."""

Status = PurchaseOrderStatus
OPEN = (Status.placed, Status.partially_received)
"""The statuses in which units are on order and may be received."""


@dataclass(frozen=True)
class LineState:
    id: int
    product_id: int
    quantity: int
    unit_cost: Decimal
    received: int
    open: int
    """Units still to come: ``quantity - received``, 0 once the order is cancelled."""


@dataclass(frozen=True)
class PurchaseOrderState:
    """A purchase order as a caller sees it, each line with what is still to come."""

    id: int
    number: str
    status: PurchaseOrderStatus
    supplier_id: int
    warehouse_id: int
    reference: str | None
    expected_on: date | None
    placed_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    lines: Sequence[LineState]

    @classmethod
    def of(cls, order: PurchaseOrder) -> PurchaseOrderState:
        cancelled = order.status is Status.cancelled
        return cls(
            id=order.id,
            number=order.number,
            status=order.status,
            supplier_id=order.supplier_id,
            warehouse_id=order.warehouse_id,
            reference=order.reference,
            expected_on=order.expected_on,
            placed_at=order.placed_at,
            closed_at=order.closed_at,
            created_at=order.created_at,
            updated_at=order.updated_at,
            lines=[
                LineState(
                    id=line.id,
                    product_id=line.product_id,
                    quantity=line.quantity,
                    unit_cost=line.unit_cost,
                    received=line.received,
                    open=0 if cancelled else line.quantity - line.received,
                )
                for line in order.lines
            ],
        )


async def create(
    session: AsyncSession, user_id: int | None, data: PurchaseOrderCreate
) -> PurchaseOrderState:
    """A draft order with the next number; nothing is on order until it is placed."""
    async with session.begin_nested():
        await _check_supplier(session, data.supplier_id)
        products = await references.line_products(session, [ln.product_id for ln in data.lines])
        await _check_warehouse(session, data.warehouse_id)
        references.refuse_inactive(products.values())
        order = PurchaseOrder(
            # Taken last: the counter's row stays locked until the transaction ends.
            number=await next_number(session, "PO"),
            status=Status.draft,
            supplier_id=data.supplier_id,
            warehouse_id=data.warehouse_id,
            reference=data.reference,
            expected_on=data.expected_on,
            user_id=user_id,
            lines=_new_lines(data.lines),
        )
        session.add(order)
        await session.flush()
    return await _reloaded(session, order)


async def update_draft(
    session: AsyncSession, order_id: int, data: PurchaseOrderUpdate
) -> PurchaseOrderState:
    """Change a draft: the fields sent, and every line when ``lines`` is sent."""
    async with session.begin_nested():
        order = await _locked(session, order_id)
        require_status(_noun(order), order.status, (Status.draft,), "be edited")
        changes = data.model_dump(exclude_unset=True, exclude={"lines"})
        if data.supplier_id is not None:
            await _check_supplier(session, data.supplier_id)
        products = {}
        if data.lines is not None:
            products = await references.line_products(session, [ln.product_id for ln in data.lines])
        if data.warehouse_id is not None:
            await _check_warehouse(session, data.warehouse_id)
        references.refuse_inactive(products.values())
        if data.lines is not None:
            order.lines = _new_lines(data.lines)
        for name, value in changes.items():
            setattr(order, name, value)
        order.updated_at = utcnow()
        await session.flush()
    return await _reloaded(session, order)


async def place(session: AsyncSession, order_id: int) -> PurchaseOrderState:
    """draft → placed: each line's units go on order at the order's warehouse."""
    async with session.begin_nested():
        order = await _locked(session, order_id)
        require_status(_noun(order), order.status, (Status.draft,), "be placed")
        await _check_warehouse(session, order.warehouse_id)
        references.refuse_inactive(
            await session.scalars(
                select(Product).where(Product.id.in_({ln.product_id for ln in order.lines}))
            )
        )
        now = utcnow()
        order.status = Status.placed
        order.placed_at = now
        order.updated_at = now
        changed = await _change_on_order(
            session, order.warehouse_id, ((ln.product_id, ln.quantity) for ln in order.lines)
        )
        await session.flush()
    events.record(session, *changed)
    return await _reloaded(session, order)


async def receive(
    session: AsyncSession, user_id: int | None, order_id: int, data: PurchaseOrderReceive
) -> PurchaseOrderState:
    """Record what arrived: one ``receipt`` per line at the line's unit cost, referencing the
    order's number; all of it or nothing.

    ValidationFailed (422) names a line id that is not the order's (or is named
    twice); OverReceipt (409) names every line that would receive more than is
    still open.
    """
    async with events.all_or_nothing(session):
        order = await _locked(session, order_id)
        require_status(_noun(order), order.status, OPEN, "receive stock")
        lines = {line.id: line for line in order.lines}
        references.named_lines(_noun(order), lines, [r.line_id for r in data.lines])
        too_many = [
            over_receipt(
                ("lines", index),
                lines[r.line_id].quantity - lines[r.line_id].received,
                r.quantity,
            )
            for index, r in enumerate(data.lines)
            if r.quantity > lines[r.line_id].quantity - lines[r.line_id].received
        ]
        if too_many:
            raise OverReceipt(
                f"{len(too_many)} of {len(data.lines)} lines receive more than is still open "
                f"on {_noun(order)}; none was received",
                too_many,
            )
        products = [lines[r.line_id].product_id for r in data.lines]
        await stock.lock_levels(session, [(p, order.warehouse_id) for p in products], create=True)
        moved = []
        for r in data.lines:
            line = lines[r.line_id]
            recorded = await stock.record_movement(
                session,
                user_id,
                MovementCreate(
                    product_id=line.product_id,
                    warehouse_id=order.warehouse_id,
                    kind=RecordedKind.receipt,
                    quantity=r.quantity,
                    reference=order.number,
                    unit_cost=line.unit_cost,
                ),
            )
            line.received += r.quantity
            moved.append(
                events.OrderLineMoved(
                    line_id=line.id,
                    product_id=line.product_id,
                    warehouse_id=order.warehouse_id,
                    quantity=r.quantity,
                    movement_id=recorded.movement.id,
                )
            )
        changed = await _change_on_order(
            session, order.warehouse_id, ((m.product_id, -m.quantity) for m in moved)
        )
        now = utcnow()
        if all(line.received == line.quantity for line in order.lines):
            order.status = Status.received
            order.closed_at = now
        else:
            order.status = Status.partially_received
        order.updated_at = now
        await session.flush()
        events.record(
            session,
            *changed,
            events.PurchaseOrderReceived(
                order_id=order.id,
                number=order.number,
                status=order.status.value,
                lines=tuple(moved),
            ),
        )
    return await _reloaded(session, order)


async def cancel(session: AsyncSession, order_id: int) -> PurchaseOrderState:
    """Cancel a draft or an order not fully received; what was still open leaves on_order.
    What was received stays in stock."""
    async with session.begin_nested():
        order = await _locked(session, order_id)
        require_status(_noun(order), order.status, (Status.draft, *OPEN), "be cancelled")
        changed: list[events.OnOrderChanged] = []
        if order.status in OPEN:
            changed = await _change_on_order(
                session,
                order.warehouse_id,
                ((ln.product_id, ln.received - ln.quantity) for ln in order.lines),
            )
        now = utcnow()
        order.status = Status.cancelled
        order.closed_at = now
        order.updated_at = now
        await session.flush()
    events.record(session, *changed)
    return await _reloaded(session, order)


async def get(session: AsyncSession, order_id: int) -> PurchaseOrderState:
    return PurchaseOrderState.of(await get_or_404(session, PurchaseOrder, order_id, NOUN))


async def list_purchase_orders(
    session: AsyncSession, flt: PurchaseOrderFilter, *, limit: int, cursor: str | None
) -> tuple[list[PurchaseOrderState], str | None]:
    stmt = select(PurchaseOrder).where(*flt.conditions())
    rows, next_cursor = await paginate(session, stmt, ORDER, limit=limit, cursor=cursor)
    return [PurchaseOrderState.of(r) for r in rows], next_cursor


def _noun(order: PurchaseOrder) -> str:
    return f"{NOUN} {order.number}"


async def _locked(session: AsyncSession, order_id: int) -> PurchaseOrder:
    """The order, its row locked until the transaction ends: its steps take turns."""
    return await get_or_404(session, PurchaseOrder, order_id, NOUN, for_update=True)


async def _reloaded(session: AsyncSession, order: PurchaseOrder) -> PurchaseOrderState:
    """The order as stored, lines included (ids, defaults), after a write."""
    await session.refresh(order)
    return PurchaseOrderState.of(order)


def _new_lines(lines: Sequence[PurchaseOrderLineCreate]) -> list[PurchaseOrderLine]:
    return [
        PurchaseOrderLine(
            product_id=ln.product_id, quantity=ln.quantity, unit_cost=ln.unit_cost, received=0
        )
        for ln in lines
    ]


async def _change_on_order(
    session: AsyncSession, warehouse_id: int, changes: Iterable[tuple[int, int]]
) -> list[events.OnOrderChanged]:
    """Add each (product, units) to ``on_order`` at the warehouse, under the levels' locks
    (a missing level is made at 0); the levels' events."""
    by_product: Counter[int] = Counter()
    for product_id, units in changes:
        by_product[product_id] += units
    deltas = {p: units for p, units in by_product.items() if units}
    await stock.lock_levels(session, [(p, warehouse_id) for p in deltas], create=True)
    for product_id, units in sorted(deltas.items()):
        await session.execute(
            update(StockLevel)
            .where(StockLevel.product_id == product_id, StockLevel.warehouse_id == warehouse_id)
            # Not a change of the quantity: updated_at stays.
            .values(on_order=StockLevel.on_order + units, updated_at=StockLevel.updated_at)
            .execution_options(synchronize_session=False)
        )
    return [events.OnOrderChanged(p, warehouse_id) for p in sorted(deltas)]


async def _check_supplier(session: AsyncSession, supplier_id: int) -> None:
    if await session.get(Supplier, supplier_id) is None:
        raise references.missing(("supplier_id",), f"supplier {supplier_id} does not exist")


async def _check_warehouse(session: AsyncSession, warehouse_id: int) -> None:
    warehouse = await session.get(Warehouse, warehouse_id)
    if warehouse is None:
        raise references.missing(("warehouse_id",), f"warehouse {warehouse_id} does not exist")
    if not warehouse.is_active:
        raise Conflict(f"warehouse {warehouse_id} is inactive; it cannot receive the order's stock")

"""The rules of reservations: hold units all or none, confirm them into shipments, release.

A hold locks the levels it reads in primary-key order (the order every
multi-level write uses), then adds up what is still free at each and writes
its lines, so however many holds and shipments race, the live holds at a
level never add up to more than its quantity. Expiry needs no write: a line
holds while its ``held_until`` is in the future (``inventory.stock.holds``);
the sweep only records what already happened. Confirming turns the lines
into shipments in the same transaction that stops them holding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import Field
from sqlalchemy import ColumnElement, and_, exists, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from inventory import events
from inventory.config import Settings
from inventory.errors import Conflict, NotFound, Shortage, ValidationFailed, field_error, shortage
from inventory.kit.filters import ListFilter
from inventory.kit.pagination import SortOrder, paginate
from inventory.kit.persistence import get_or_404
from inventory.kit.schemas import RefId
from inventory.models import (
    Product,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
    Warehouse,
)
from inventory.models.columns import utcnow
from inventory.reservations.schemas import ReservationCreate
from inventory.stock import holds
from inventory.stock import service as stock
from inventory.stock.schemas import MovementCreate, RecordedKind

ORDER = SortOrder("-id", Reservation.id, Reservation.id, "int", descending=True)
SWEEP_BATCH = 500


@dataclass(frozen=True)
class HoldPolicy:
    """How long holds last: the default when a request names none, and the longest allowed."""

    default_ttl_seconds: int
    max_ttl_seconds: int

    @classmethod
    def of(cls, settings: Settings) -> HoldPolicy:
        return cls(settings.reservation_ttl_seconds, settings.reservation_max_ttl_seconds)


@dataclass(frozen=True)
class ReservationState:
    """A reservation as a caller sees it at one moment: a hold past its expiry is expired."""

    id: int
    status: ReservationStatus
    reference: str | None
    expires_at: datetime | None
    """None for a sales order's allocation: it holds until shipped or cancelled."""
    created_at: datetime
    lines: Sequence[ReservationLine]
    movement_ids: list[int]
    sales_order_id: int | None = None

    @classmethod
    def of(cls, reservation: Reservation, now: datetime) -> ReservationState:
        status = reservation.status
        expires_at = reservation.expires_at
        if status is ReservationStatus.held and expires_at is not None and expires_at <= now:
            status = ReservationStatus.expired
        return cls(
            id=reservation.id,
            status=status,
            reference=reservation.reference,
            expires_at=reservation.expires_at,
            created_at=reservation.created_at,
            # A sales order's allocation shows what it holds now; its lines that
            # shipped or were released are the order's history.
            lines=[ln for ln in reservation.lines if ln.held_until is not None]
            if reservation.sales_order_id is not None
            else reservation.lines,
            # One shipment may end several lines of a sales order's allocation (an order
            # line keeps one live line, but allocations made before that rule may have more).
            movement_ids=list(
                dict.fromkeys(line.movement_id for line in reservation.lines if line.movement_id)
            ),
            sales_order_id=reservation.sales_order_id,
        )


class ReservationFilter(ListFilter):
    status: Annotated[ReservationStatus | None, Field(strict=False)] = Field(
        default=None, description="held, confirmed, released or expired (past expires_at)"
    )
    product_id: RefId | None = Field(default=None, description="Reservations with a line of it")
    warehouse_id: RefId | None = Field(default=None, description="Reservations with a line in it")
    reference: str | None = Field(default=None, max_length=100)

    def conditions(self, now: datetime) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        held = Reservation.status == ReservationStatus.held
        if self.status is ReservationStatus.held:
            conditions += [
                held,
                or_(Reservation.expires_at.is_(None), Reservation.expires_at > now),
            ]
        elif self.status is ReservationStatus.expired:
            expired = Reservation.status == ReservationStatus.expired
            conditions.append(or_(expired, and_(held, Reservation.expires_at <= now)))
        elif self.status is not None:
            conditions.append(Reservation.status == self.status)
        line = ReservationLine.reservation_id == Reservation.id
        if self.product_id is not None:
            conditions.append(exists().where(line, ReservationLine.product_id == self.product_id))
        if self.warehouse_id is not None:
            conditions.append(
                exists().where(line, ReservationLine.warehouse_id == self.warehouse_id)
            )
        if self.reference is not None:
            conditions.append(Reservation.reference == self.reference)
        return conditions


async def hold(
    session: AsyncSession, user_id: int | None, data: ReservationCreate, policy: HoldPolicy
) -> ReservationState:
    """Hold every line, or none: Shortage (409) names each line that cannot be held."""
    ttl = data.ttl_seconds or policy.default_ttl_seconds
    if ttl > policy.max_ttl_seconds:
        raise ValidationFailed(
            "The hold is too long.",
            [
                field_error(
                    ("ttl_seconds",),
                    f"Input should be less than or equal to {policy.max_ttl_seconds}",
                    "less_than_equal",
                )
            ],
        )
    now = utcnow()
    expires_at = now + timedelta(seconds=ttl)
    async with session.begin_nested():
        await check_references(
            session,
            [ln.product_id for ln in data.lines],
            [ln.warehouse_id for ln in data.lines if ln.warehouse_id is not None],
            "reserved",
        )
        free = await _lock_and_read_free(session, data, now)
        placed: list[tuple[int, int, int]] = []
        shortages = []
        for index, line in enumerate(data.lines):
            warehouse_id, available = _place(free, line.product_id, line.warehouse_id)
            if warehouse_id is None or available < line.quantity:
                shortages.append(shortage(("lines", index), max(available, 0), line.quantity))
                continue
            key = (line.product_id, warehouse_id)
            free[key] = (available - line.quantity, free[key][1])
            placed.append((line.product_id, warehouse_id, line.quantity))
        if shortages:
            raise Shortage(
                f"{len(shortages)} of {len(data.lines)} lines cannot be held; none was",
                shortages,
            )
        reservation = Reservation(
            status=ReservationStatus.held,
            reference=data.reference,
            expires_at=expires_at,
            created_at=now,
            user_id=user_id,
            lines=[
                ReservationLine(product_id=p, warehouse_id=w, quantity=q, held_until=expires_at)
                for p, w, q in placed
            ],
        )
        session.add(reservation)
        levels = sorted({(p, w) for p, w, _ in placed})
        await holds.extend_holds(session, levels, expires_at)
        await session.flush()
    events.record(session, *(events.HoldsChanged(p, w) for p, w in levels))
    return ReservationState.of(reservation, now)


async def confirm(
    session: AsyncSession, user_id: int | None, reservation_id: int
) -> ReservationState:
    """Ship the held lines, in one transaction; confirming again answers the same and ships
    nothing. Conflict (409) once it is released or has expired."""
    async with events.all_or_nothing(session):
        reservation, state = await _locked(session, reservation_id)
        _not_an_allocation(reservation)
        if state.status is ReservationStatus.confirmed:
            return state
        if state.status is not ReservationStatus.held:
            raise Conflict(f"reservation {reservation_id} is {state.status.value}; it cannot ship")
        await stock.lock_levels(
            session, [(ln.product_id, ln.warehouse_id) for ln in reservation.lines]
        )
        # Expiry is judged once the locks are held: a confirmation that waited for
        # them past the reservation's expiry is refused like any late one.
        now = utcnow()
        if reservation.expires_at is not None and reservation.expires_at <= now:
            raise Conflict(f"reservation {reservation_id} is expired; it cannot ship")
        # The lines stop holding first, so the shipments below may take their units.
        _end(reservation, ReservationStatus.confirmed, now)
        await session.flush()
        for line in reservation.lines:
            shipped = await stock.record_movement(
                session,
                user_id,
                MovementCreate(
                    product_id=line.product_id,
                    warehouse_id=line.warehouse_id,
                    kind=RecordedKind.shipment,
                    quantity=line.quantity,
                    reference=reservation.reference,
                ),
            )
            line.movement_id = shipped.movement.id
        await session.flush()
    return ReservationState.of(reservation, now)


async def release(session: AsyncSession, reservation_id: int) -> ReservationState:
    """Give the units back; releasing a released (or expired) reservation changes nothing.
    Conflict (409) once it is confirmed."""
    async with session.begin_nested():
        reservation, state = await _locked(session, reservation_id)
        _not_an_allocation(reservation)
        now = utcnow()
        if state.status is ReservationStatus.confirmed:
            raise Conflict(f"reservation {reservation_id} is confirmed; it cannot be released")
        if state.status is not ReservationStatus.held:
            return state
        _end(reservation, ReservationStatus.released, now)
        await session.flush()
    events.record(
        session, *(events.HoldsChanged(ln.product_id, ln.warehouse_id) for ln in reservation.lines)
    )
    return ReservationState.of(reservation, now)


async def _locked(
    session: AsyncSession, reservation_id: int
) -> tuple[Reservation, ReservationState]:
    """The reservation, its row locked until the transaction ends (a confirmation and a
    release of one reservation take turns), and how it stands once the lock is held."""
    reservation = await get_or_404(
        session, Reservation, reservation_id, "reservation", for_update=True
    )
    return reservation, ReservationState.of(reservation, utcnow())


def _not_an_allocation(reservation: Reservation) -> None:
    """Refuse to confirm or release a sales order's allocation: its order ships or cancels it."""
    if reservation.sales_order_id is not None:
        raise Conflict(
            f"reservation {reservation.id} holds sales order {reservation.sales_order_id}'s "
            "allocations; ship or cancel the order instead"
        )


def _end(reservation: Reservation, status: ReservationStatus, now: datetime) -> None:
    """The reservation stops holding anything, for good, as ``status``."""
    for line in reservation.lines:
        line.held_until = None
    reservation.status = status
    reservation.ended_at = now


async def get(session: AsyncSession, reservation_id: int) -> ReservationState:
    reservation = await get_or_404(session, Reservation, reservation_id, "reservation")
    return ReservationState.of(reservation, utcnow())


async def list_reservations(
    session: AsyncSession, flt: ReservationFilter, *, limit: int, cursor: str | None
) -> tuple[list[ReservationState], str | None]:
    now = utcnow()
    stmt = select(Reservation).where(*flt.conditions(now))
    rows, next_cursor = await paginate(session, stmt, ORDER, limit=limit, cursor=cursor)
    return [ReservationState.of(r, now) for r in rows], next_cursor


async def sweep_expired(session: AsyncSession, *, limit: int = SWEEP_BATCH) -> list[int]:
    """Mark up to ``limit`` holds whose expiry has passed ``expired``; their ids.

    Nothing changes for stock: those lines stopped counting when they expired.
    Each is claimed with a conditional update, so two sweeps (or a sweep and a
    confirmation) never both take one.
    """
    now = utcnow()
    due = (
        await session.scalars(
            select(Reservation.id)
            .where(Reservation.status == ReservationStatus.held, Reservation.expires_at <= now)
            .order_by(Reservation.expires_at, Reservation.id)
            .limit(limit)
        )
    ).all()
    if not due:
        return []
    claimed = list(
        (
            await session.scalars(
                update(Reservation)
                .where(
                    Reservation.id.in_(due),
                    Reservation.status == ReservationStatus.held,
                    Reservation.expires_at <= now,
                )
                .values(status=ReservationStatus.expired, ended_at=now)
                .returning(Reservation.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
    )
    if claimed:
        await session.execute(
            update(ReservationLine)
            .where(ReservationLine.reservation_id.in_(claimed))
            .values(held_until=None)
            .execution_options(synchronize_session=False)
        )
        events.record(session, *(events.ReservationExpired(i) for i in sorted(claimed)))
    return sorted(claimed)


async def check_references(
    session: AsyncSession, product_ids: Iterable[int], warehouse_ids: Iterable[int], verb: str
) -> dict[int, Product]:
    """The products, by id; NotFound (404) for a product or warehouse that does not exist,
    Conflict (409) for an inactive product, which cannot be ``verb`` ("reserved", "sold")."""
    wanted = sorted(set(product_ids))
    products = {
        p.id: p for p in await session.scalars(select(Product).where(Product.id.in_(wanted)))
    }
    for product_id in wanted:
        product = products.get(product_id)
        if product is None:
            raise NotFound(f"product {product_id} does not exist")
        if not product.is_active:
            raise Conflict(f"product {product_id} is inactive; it cannot be {verb}")
    named = sorted(set(warehouse_ids))
    if named:
        found = set(await session.scalars(select(Warehouse.id).where(Warehouse.id.in_(named))))
        for warehouse_id in named:
            if warehouse_id not in found:
                raise NotFound(f"warehouse {warehouse_id} does not exist")
    return products


async def _lock_and_read_free(
    session: AsyncSession, data: ReservationCreate, now: datetime
) -> holds.Free:
    """Lock every level the lines may draw on (primary-key order), then read what each has
    free (``holds.read_free``)."""
    named = {(ln.product_id, ln.warehouse_id) for ln in data.lines if ln.warehouse_id is not None}
    open_products = {ln.product_id for ln in data.lines if ln.warehouse_id is None}
    pair = tuple_(StockLevel.product_id, StockLevel.warehouse_id)
    scope = [
        *([pair.in_(sorted(named))] if named else []),
        *([StockLevel.product_id.in_(sorted(open_products))] if open_products else []),
    ]
    await session.execute(
        select(StockLevel.id).where(or_(*scope)).order_by(StockLevel.id).with_for_update()
    )
    return await holds.read_free(session, now, levels=named, products=open_products)


def _place(free: holds.Free, product_id: int, warehouse_id: int | None) -> tuple[int | None, int]:
    """The warehouse a line draws from and what it has free there.

    A line that names no warehouse takes the active one with the most free
    units, then the lowest id; (None, 0) when there is none.
    """
    if warehouse_id is not None:
        return warehouse_id, free.get((product_id, warehouse_id), (0, True))[0]
    choices = [
        (-units, w) for (p, w), (units, active) in free.items() if p == product_id and active
    ]
    if not choices:
        return None, 0
    most, chosen = min(choices)
    return chosen, -most

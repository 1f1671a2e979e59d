"""Change events: recorded by services inside a transaction, handed on only once it commits.

A service records what it changed on the session (``record``); the unit of
work takes the events after a successful commit and passes them to its
listeners (cache invalidation, the live change feed, jobs, metrics). A rollback,
or a session closed without commit, drops them: nobody hears of a change
that did not happen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_PENDING = "inventory.pending_events"
_MAX_INT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class StockChanged:
    """One level changed by one ledger entry; ``quantity`` is the level after the change.

    ``sequence`` is the level's movement count after this change: a level's
    changes are numbered 1, 2, 3, ... in commit order, which is how the change
    feed restores their order (see ``inventory.sequencer``). It is internal:
    clients see the other fields. None when unknown (a process of an
    older release sent the change).
    """

    product_id: int
    warehouse_id: int
    quantity: int
    movement_id: int
    sequence: int | None = None
    reserved: int | None = None
    """Units held by live reservations right after the change (None: not known)."""

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)

    @property
    def available(self) -> int | None:
        return None if self.reserved is None else self.quantity - self.reserved

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StockChanged:
        """From JSON another process sent; ValueError unless every field is an int in range."""
        values = {name: data[name] for name in ("product_id", "warehouse_id", "quantity")}
        values["movement_id"] = data["movement_id"]
        sequence, reserved = data.get("sequence"), data.get("reserved")
        if not all(map(_in_range, values.values())) or not all(
            value is None or _in_range(value) for value in (sequence, reserved)
        ):
            raise ValueError(f"not a stock change: {data!r}")
        return cls(**values, sequence=sequence, reserved=reserved)


def _in_range(value: object) -> bool:
    return type(value) is int and 0 <= value <= _MAX_INT


@dataclass(frozen=True, slots=True)
class LowStock:
    """A change took a level from above its product's reorder level to at or below it."""

    product_id: int
    warehouse_id: int
    quantity: int
    reorder_level: int


@dataclass(frozen=True, slots=True)
class HoldsChanged:
    """Units were held at a level, or given back: its reserved and available units changed."""

    product_id: int
    warehouse_id: int


@dataclass(frozen=True, slots=True)
class OnOrderChanged:
    """Units on order for a level changed (a purchase order placed, received or cancelled)."""

    product_id: int
    warehouse_id: int


@dataclass(frozen=True, slots=True)
class OrderLineMoved:
    """Units of one order line that one ledger entry brought in or sent out."""

    line_id: int
    product_id: int
    warehouse_id: int
    quantity: int
    movement_id: int


@dataclass(frozen=True, slots=True)
class PurchaseOrderReceived:
    """Units of a purchase order arrived (``purchase_order.received``); ``status`` is the
    order's after the receipt."""

    order_id: int
    number: str
    status: str
    lines: tuple[OrderLineMoved, ...]


@dataclass(frozen=True, slots=True)
class SalesOrderShipped:
    """Units of a sales order left (``sales_order.shipped``); ``status`` is the order's after
    the shipment."""

    order_id: int
    number: str
    status: str
    lines: tuple[OrderLineMoved, ...]


@dataclass(frozen=True, slots=True)
class ReservationExpired:
    """A hold's expiry passed and the sweep recorded it (its units were free already)."""

    reservation_id: int


@dataclass(frozen=True, slots=True)
class EntriesChanged:
    """Rows of one catalogue table (``products``, ``categories``, …) were written."""

    table: str


@dataclass(frozen=True, slots=True)
class UserChanged:
    """A user's role, status or password changed: what was remembered of them is stale."""

    user_id: int


Event = (
    StockChanged
    | LowStock
    | HoldsChanged
    | OnOrderChanged
    | PurchaseOrderReceived
    | SalesOrderShipped
    | ReservationExpired
    | EntriesChanged
    | UserChanged
)


def record(session: AsyncSession, *events: Event) -> None:
    """Note events to be delivered after this session's next successful commit."""
    session.info.setdefault(_PENDING, []).extend(events)


def pending(session: AsyncSession) -> int:
    """How many events are waiting for the next commit: a mark for ``forget_since``."""
    return len(session.info.get(_PENDING, ()))


def forget_since(session: AsyncSession, mark: int) -> None:
    """Drop the events recorded after ``mark`` (their writes were rolled back to a savepoint)."""
    del session.info.get(_PENDING, [])[mark:]


@asynccontextmanager
async def all_or_nothing(session: AsyncSession) -> AsyncIterator[None]:
    """A savepoint that takes its events with it: when the block raises, what it wrote is
    rolled back and what it announced is forgotten, even if the caller then commits the
    rest of its transaction (as a GraphQL mutation answering a typed error does)."""
    mark = pending(session)
    try:
        async with session.begin_nested():
            yield
    except BaseException:
        forget_since(session, mark)
        raise


def take(session: AsyncSession) -> list[Event]:
    """The events recorded since the last take (and forget them)."""
    pending: list[Event] = session.info.pop(_PENDING, [])
    return pending

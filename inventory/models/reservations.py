"""Reservations: stock promised to a buyer for a while, line by line, before it ships."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.models.base import Base
from inventory.models.columns import SQLITE_NO_ID_REUSE, IdMixin, UTCDateTime, utcnow


class ReservationStatus(StrEnum):
    held = "held"
    confirmed = "confirmed"
    released = "released"
    expired = "expired"


class Reservation(IdMixin, Base):
    """A promise of stock: its lines hold units until it is confirmed, released or expires.

    ``status`` stays ``held`` past ``expires_at`` until the sweep marks it
    ``expired``; readers treat a hold as live only while ``expires_at`` is in
    the future, so nothing waits for the sweep.
    """

    __tablename__ = "reservations"
    __table_args__ = (
        Index("ix_reservations_status_expires_at", "status", "expires_at"),
        SQLITE_NO_ID_REUSE,
    )

    status: Mapped[ReservationStatus] = mapped_column(
        Enum(
            ReservationStatus,
            name="reservation_status",
            native_enum=False,
            create_constraint=True,
            length=16,
        )
    )
    reference: Mapped[str | None] = mapped_column(String(100), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Null for a sales order's allocation, which holds until shipped or cancelled."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When it was confirmed, released or marked expired."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sales_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("sales_orders.id", ondelete="RESTRICT"), unique=True
    )
    """The sales order whose allocations this holds; only that order's writes change it."""

    lines: Mapped[list[ReservationLine]] = relationship(
        lazy="selectin", order_by="ReservationLine.id", cascade="all, delete-orphan"
    )


class ReservationLine(IdMixin, Base):
    """Units of one product held in one warehouse.

    ``held_until`` is the reservation's expiry while the line holds stock and
    null once it no longer does (confirmed, released, expired): the units a
    level has promised are the sum of its lines whose ``held_until`` is still
    in the future, read from one index.
    """

    __tablename__ = "reservation_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index(
            "ix_reservation_lines_product_id_warehouse_id_held_until",
            "product_id",
            "warehouse_id",
            "held_until",
        ),
        SQLITE_NO_ID_REUSE,
    )

    reservation_id: Mapped[int] = mapped_column(
        ForeignKey("reservations.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    quantity: Mapped[int]
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    movement_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("stock_movements.id", ondelete="RESTRICT"),
    )
    """The shipment that confirmed this line."""
    sales_order_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("sales_order_lines.id", ondelete="RESTRICT"), index=True
    )
    """The sales order line this allocates units to."""

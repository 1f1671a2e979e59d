"""Purchase orders (stock coming in from a supplier) and sales orders (stock promised to a
customer), line by line, with their gap-free numbers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, Enum, ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.models.base import Base
from inventory.models.columns import (
    COST,
    SQLITE_NO_ID_REUSE,
    IdMixin,
    TimestampMixin,
    UTCDateTime,
)


class PurchaseOrderStatus(StrEnum):
    draft = "draft"
    placed = "placed"
    partially_received = "partially_received"
    received = "received"
    cancelled = "cancelled"


class SalesOrderStatus(StrEnum):
    draft = "draft"
    confirmed = "confirmed"
    partially_shipped = "partially_shipped"
    shipped = "shipped"
    cancelled = "cancelled"


def _status_enum(enum: type[StrEnum], name: str) -> Enum:
    return Enum(enum, name=name, native_enum=False, create_constraint=True, length=24)


class OrderNumber(Base):
    """The last number given to an order of one kind (``PO``, ``SO``).

    Taking a number raises it in the creating transaction, under the row's
    lock: creators of one kind take turns, and a creation that rolls back
    gives its number back, so numbers have no gaps.
    """

    __tablename__ = "order_numbers"

    kind: Mapped[str] = mapped_column(String(2), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class PurchaseOrder(IdMixin, TimestampMixin, Base):
    """Stock ordered from a supplier for one warehouse; receiving it records receipts."""

    __tablename__ = "purchase_orders"
    __table_args__ = SQLITE_NO_ID_REUSE

    number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[PurchaseOrderStatus] = mapped_column(
        _status_enum(PurchaseOrderStatus, "purchase_order_status"), index=True
    )
    supplier_id: Mapped[int] = mapped_column(
        ForeignKey("suppliers.id", ondelete="RESTRICT"), index=True
    )
    warehouse_id: Mapped[int] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT"), index=True
    )
    reference: Mapped[str | None] = mapped_column(String(100))
    expected_on: Mapped[date | None] = mapped_column(Date)
    placed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When it was fully received or cancelled."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    lines: Mapped[list[PurchaseOrderLine]] = relationship(
        lazy="selectin", order_by="PurchaseOrderLine.id", cascade="all, delete-orphan"
    )


class PurchaseOrderLine(IdMixin, Base):
    """Units of one product ordered at one unit cost, and how many have arrived."""

    __tablename__ = "purchase_order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("received >= 0 AND received <= quantity", name="received_in_range"),
        CheckConstraint("unit_cost >= 0", name="unit_cost_not_negative"),
        SQLITE_NO_ID_REUSE,
    )

    order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), index=True
    )
    quantity: Mapped[int]
    unit_cost: Mapped[Decimal] = mapped_column(COST)
    received: Mapped[int] = mapped_column(default=0)


class SalesOrder(IdMixin, TimestampMixin, Base):
    """Stock sold to a customer: confirmed lines are allocated (held), then shipped."""

    __tablename__ = "sales_orders"
    __table_args__ = SQLITE_NO_ID_REUSE

    number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[SalesOrderStatus] = mapped_column(
        _status_enum(SalesOrderStatus, "sales_order_status"), index=True
    )
    customer_reference: Mapped[str | None] = mapped_column(String(100), index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When it was fully shipped or cancelled."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    lines: Mapped[list[SalesOrderLine]] = relationship(
        lazy="selectin", order_by="SalesOrderLine.id", cascade="all, delete-orphan"
    )


class SalesOrderLine(IdMixin, Base):
    """Units of one product sold from one warehouse: how many are allocated and shipped.

    ``allocated`` counts units ever allocated to the line, shipped ones included;
    ``allocated - shipped`` units are held for it by live reservation lines, and
    ``quantity - allocated`` are backordered.
    """

    __tablename__ = "sales_order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "shipped >= 0 AND shipped <= allocated AND allocated <= quantity",
            name="allocation_in_range",
        ),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        SQLITE_NO_ID_REUSE,
    )

    order_id: Mapped[int] = mapped_column(
        ForeignKey("sales_orders.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), index=True
    )
    warehouse_id: Mapped[int] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT"), index=True
    )
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    allocated: Mapped[int] = mapped_column(default=0)
    shipped: Mapped[int] = mapped_column(default=0)

    @property
    def backordered(self) -> int:
        """Units still owed and not allocated: ``quantity - allocated``."""
        return self.quantity - self.allocated

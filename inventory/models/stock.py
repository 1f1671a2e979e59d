"""Stock levels per product and warehouse, and the append-only movement ledger."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, query_expression

from inventory.models.base import Base
from inventory.models.columns import COST, SQLITE_NO_ID_REUSE, UTCDateTime, utcnow
from inventory.models.products import Product


class MovementKind(StrEnum):
    receipt = "receipt"
    shipment = "shipment"
    adjustment = "adjustment"
    transfer_out = "transfer_out"
    transfer_in = "transfer_in"


class StockLevel(Base):
    """Quantity on hand of one product in one warehouse; the sum of its movements."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("product_id", "warehouse_id"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        SQLITE_NO_ID_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[int] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT"), index=True
    )
    quantity: Mapped[int] = mapped_column(default=0)
    # How many ledger entries this level has. Each change adds one in the same
    # statement as its quantity, under the row lock, so a level's changes are
    # numbered 1, 2, 3, ... in commit order: the change feed uses the number
    # to put them back in order when processes deliver them out of order.
    movement_count: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The latest expiry of any hold ever taken on this level (never lowered). Once
    # it has passed, no hold is live here and a decrement needs no look at the
    # reservations; set, under the row lock, by every hold.
    holds_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Units on placed purchase orders not yet received, kept by the orders'
    # writes under the row lock.
    on_order: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Weighted average cost of the units here: a receipt with a cost (or a
    # transfer in) averages it in; everything else leaves it.
    average_cost: Mapped[Decimal] = mapped_column(COST, default=Decimal(0), server_default="0")

    # The product's reorder level, read with the level (one correlated subquery).
    reorder_level: Mapped[int] = column_property(
        select(Product.reorder_level).where(Product.id == product_id).scalar_subquery()
    )
    # Units promised by live holds: loaded only when a read asks for it
    # (``inventory.stock.holds.with_reserved``), since it depends on the moment.
    reserved: Mapped[int | None] = query_expression()

    @property
    def available(self) -> int | None:
        """On hand and not promised: ``quantity - reserved`` (None when not loaded)."""
        return None if self.reserved is None else self.quantity - self.reserved


class StockMovement(Base):
    """One ledger entry: a signed change of one level. Rows are never updated or deleted."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        CheckConstraint("quantity <> 0", name="quantity_not_zero"),
        # A level's entries in time order: "the balance at T" is one backward step in it.
        Index(
            "ix_stock_movements_level_created_at",
            "product_id",
            "warehouse_id",
            "created_at",
            "id",
        ),
        # A product's entries in time order across its warehouses (its history).
        Index("ix_stock_movements_product_created_at", "product_id", "created_at", "id"),
        SQLITE_NO_ID_REUSE,
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[int] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[MovementKind] = mapped_column(
        Enum(
            MovementKind, name="movement_kind", native_enum=False, create_constraint=True, length=16
        )
    )
    quantity: Mapped[int]
    # The level's quantity right after this entry (the running sum of its ledger).
    balance: Mapped[int] = mapped_column(BigInteger)
    # Units live reservations held at the level right after this entry (null for
    # entries older than reservations): what a live feed reports with the balance.
    reserved: Mapped[int | None] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    # The cost a receipt or transfer brought its units in at (null: none given),
    # and the level's average cost right after the entry: what the level was
    # worth at any moment is ``balance * average_cost`` of its last entry then
    # (null for entries older than valuation: 0).
    unit_cost: Mapped[Decimal | None] = mapped_column(COST)
    average_cost: Mapped[Decimal | None] = mapped_column(COST)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    # Both legs of a transfer share one id.
    transfer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

"""Stock counts (stocktakes): what was found on the shelves, line by line, and when."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Enum, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.models.base import Base
from inventory.models.columns import SQLITE_NO_ID_REUSE, IdMixin, UTCDateTime, utcnow


class CountStatus(StrEnum):
    open = "open"
    finished = "finished"
    cancelled = "cancelled"


class StockCount(IdMixin, Base):
    """One count of one warehouse; finishing it turns differences into adjustments."""

    __tablename__ = "stock_counts"
    __table_args__ = SQLITE_NO_ID_REUSE

    status: Mapped[CountStatus] = mapped_column(
        Enum(
            CountStatus, name="count_status", native_enum=False, create_constraint=True, length=16
        ),
        index=True,
    )
    warehouse_id: Mapped[int] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When it was finished or cancelled."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    lines: Mapped[list[StockCountLine]] = relationship(
        lazy="selectin", order_by="StockCountLine.product_id", cascade="all, delete-orphan"
    )


class StockCountLine(IdMixin, Base):
    """One product of a count: the ledger's figure and, once counted, what was found."""

    __tablename__ = "stock_count_lines"
    __table_args__ = (
        UniqueConstraint("count_id", "product_id"),
        CheckConstraint("counted >= 0", name="counted_not_negative"),
        SQLITE_NO_ID_REUSE,
    )

    count_id: Mapped[int] = mapped_column(ForeignKey("stock_counts.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    expected: Mapped[int]
    """The ledger's balance at ``counted_at`` (at the count's start until counted)."""
    counted: Mapped[int | None]
    counted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    difference: Mapped[int | None]
    """``counted - expected``: the adjustment finishing records (null until counted)."""

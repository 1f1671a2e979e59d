"""Column shapes shared by the tables: surrogate keys, UTC timestamps and the clock they read."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import DateTime, TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on every engine.

    SQLite has no time zone type and hands back naive values; PostgreSQL's
    ``timestamptz`` is used as is.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


COST = Numeric(16, 4)
"""A unit cost, kept to four decimal places (``inventory.kit.money.cost``)."""

# SQLite reuses the highest rowid after it is deleted unless AUTOINCREMENT is
# on; ids appear in ETags and cursors, so they must never come back.
SQLITE_NO_ID_REUSE = {"sqlite_autoincrement": True}


class IdMixin:
    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-10)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, sort_order=10)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, sort_order=10
    )

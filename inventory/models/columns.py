"""Column shapes shared by the tables: surrogate keys and timestamps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column

from inventory.db import UTCDateTime, utcnow

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

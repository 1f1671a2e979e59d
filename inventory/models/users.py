"""The users table and the role hierarchy."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from inventory.models.base import Base
from inventory.models.columns import SQLITE_NO_ID_REUSE, IdMixin, TimestampMixin, UTCDateTime


class Role(StrEnum):
    """Hierarchical: each role may do everything the ones before it may."""

    viewer = "viewer"
    clerk = "clerk"
    manager = "manager"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, required: Role) -> bool:
        return _RANKS[self] >= _RANKS[required]


_RANKS = {role: rank for rank, role in enumerate(Role)}


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = SQLITE_NO_ID_REUSE

    # Stored lower-cased, so the unique constraint is case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="role", native_enum=False, create_constraint=True, length=16)
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    tokens_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Access tokens issued at or before this moment are refused: set by a password change,
    a role change or a deactivation."""

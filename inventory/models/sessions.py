"""Refresh tokens: one row per token handed out, stored only as its hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from inventory.models.base import Base
from inventory.models.columns import SQLITE_NO_ID_REUSE, IdMixin, UTCDateTime, utcnow


class RefreshToken(IdMixin, Base):
    """One refresh token. A sign-in starts a family; each refresh adds the next member.

    A token works once (``used_at``); presenting a used one again revokes its
    whole family (``revoked_at``), since one of the two holders is a thief.
    """

    __tablename__ = "refresh_tokens"
    __table_args__ = SQLITE_NO_ID_REUSE

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the token, hex: the token is random and long, so no salt or stretching."""
    family: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

"""Reads by id, and writes that turn constraint violations into domain errors, atomically.

Each write runs in a SAVEPOINT, so a refused write leaves the surrounding
transaction usable and nothing half-applied, whichever front called it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from sqlalchemy import Row, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from inventory.errors import Conflict, NotFound, PreconditionFailed
from inventory.models.base import Base
from inventory.models.columns import IdMixin

M = TypeVar("M", bound=IdMixin)

Violation = Literal["unique", "foreign_key", "check", "not_null", "other"]


def violation_kind(error: IntegrityError) -> Violation:
    """Which kind of constraint an IntegrityError broke, on SQLite and PostgreSQL."""
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    by_sqlstate: dict[str, Violation] = {
        "23505": "unique",
        "23503": "foreign_key",
        "23514": "check",
        "23502": "not_null",
    }
    if sqlstate in by_sqlstate:
        return by_sqlstate[sqlstate]
    message = str(orig).upper()
    for marker, kind in (
        ("UNIQUE CONSTRAINT", "unique"),
        ("FOREIGN KEY CONSTRAINT", "foreign_key"),
        ("CHECK CONSTRAINT", "check"),
        ("NOT NULL CONSTRAINT", "not_null"),
    ):
        if marker in message:
            return kind  # type: ignore[return-value]
    return "other"


async def get_or_404(
    session: AsyncSession, model: type[M], entry_id: int, noun: str, *, for_update: bool = False
) -> M:
    """The entry with ``entry_id``, or NotFound; ``for_update`` locks its row until commit."""
    entry = await session.get(model, entry_id, with_for_update=for_update)
    if entry is None:
        raise NotFound(f"{noun} {entry_id} does not exist")
    return entry


async def row_or_404(
    connection: AsyncConnection, model: type[Base], entry_id: int, noun: str
) -> Row[Any]:
    """The entry's row, read without the ORM (no session, identity map or instance
    loading: a third of an uncached read's time), or NotFound as ``get_or_404``."""
    table = model.__table__
    row = (await connection.execute(select(table).where(table.c.id == entry_id))).first()
    if row is None:
        raise NotFound(f"{noun} {entry_id} does not exist")
    return row


async def save(
    session: AsyncSession,
    entry: Any,
    *,
    duplicate: str,
    changes: Mapping[str, Any] | None = None,
) -> None:
    """Insert ``entry``, or apply ``changes`` to it, now; a unique violation is Conflict(duplicate).

    The changes are made inside the SAVEPOINT: made before it, they would be
    flushed when it begins, outside it, and a refusal would then poison the
    whole transaction instead of leaving it usable. When refused, the entry
    is expired (it reloads as stored) or, if new, no longer in the session.
    """
    try:
        async with session.begin_nested():
            for field, value in (changes or {}).items():
                setattr(entry, field, value)
            session.add(entry)
            await session.flush()
    except IntegrityError as exc:
        if violation_kind(exc) == "unique":
            raise Conflict(duplicate) from exc
        raise Conflict("the change conflicts with other data; reload and try again") from exc
    except StaleDataError as exc:
        raise PreconditionFailed("the entry was changed by someone else; reload it") from exc


async def delete_unreferenced(
    session: AsyncSession, model: type[M], entry_id: int, noun: str, *, referenced_by: str
) -> None:
    """Delete one row; NotFound when absent, Conflict while other rows still refer to it."""
    try:
        async with session.begin_nested():
            result = await session.execute(delete(model).where(model.id == entry_id))
    except IntegrityError as exc:
        raise Conflict(f"{noun} {entry_id} is still used by {referenced_by}") from exc
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"{noun} {entry_id} does not exist")


def insert_for(session: AsyncSession, model: type[Any]) -> Any:
    """An INSERT with ``on_conflict_do_*`` for the session's engine (PostgreSQL or SQLite)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"upserts are not implemented for {dialect}")

"""Keyset pagination with opaque cursors, shared by every list in REST and GraphQL.

A cursor is the sort value and id of the last row served, so pages stay stable
while rows are inserted, and reading page N costs the same as page 1. A
case-insensitive order keeps the row's own value in the cursor and folds both
sides in SQL, so the cursor and ORDER BY compare exactly alike.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Row, Select, String, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from inventory.errors import ValidationFailed, field_error
from inventory.kit.schemas import MAX_ID

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

T = TypeVar("T")
M = TypeVar("M")
R = TypeVar("R")
S = TypeVar("S", bound=Select[*tuple[Any, ...]])


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class SortOrder:
    """One way a list can be ordered; ``id`` always breaks ties."""

    name: str
    column: InstrumentedAttribute[Any]
    id_column: InstrumentedAttribute[int]
    value_kind: Literal["str", "int", "datetime"]
    descending: bool = False
    max_id: int = MAX_ID
    """The largest id the column can hold (the ledger's ids are 64-bit)."""
    fold_case: bool = False
    """Order text case-insensitively (``bravo`` before ``Foxtrot``); ``id`` breaks ties."""

    @property
    def by_id_only(self) -> bool:
        return self.column is self.id_column

    def key(self, value: Any) -> ColumnElement[Any]:
        """The sort key of ``value`` (the column, or a cursor's value) as SQL compares it."""
        return CaseFolded(value) if self.fold_case else value


class CaseFolded(FunctionElement[str]):
    """``lower(text)``, compared by code point on every database.

    SQLite compares text by code point already; PostgreSQL would use the
    database's collation, so the key is given the "C" collation there and both
    databases order alike. SQLite's ``lower`` folds ASCII letters only.
    """

    type = String()
    inherit_cache = True


@compiles(CaseFolded)
def _lower(element: CaseFolded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(CaseFolded, "postgresql")
def _lower_by_code_point(element: CaseFolded, compiler: SQLCompiler, **kw: Any) -> str:
    return f'lower({compiler.process(element.clauses, **kw)}) COLLATE "C"'


class InvalidCursor(ValidationFailed):
    def __init__(self, reason: str) -> None:
        super().__init__(
            "The cursor is not valid for this list.",
            errors=[field_error(("query", "cursor"), reason, "value_error.cursor")],
        )


def encode_cursor(order: SortOrder, row: Any) -> str:
    value = getattr(row, order.column.key)
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([order.name, value, getattr(row, order.id_column.key)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(order: SortOrder, cursor: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, value, last_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if name != order.name:
        raise InvalidCursor(f"cursor was issued for sort {name!r}, not {order.name!r}")
    if (
        not isinstance(last_id, int)
        or isinstance(last_id, bool)
        or not 1 <= last_id <= order.max_id
    ):
        raise InvalidCursor("malformed cursor")
    try:
        if order.value_kind == "datetime":
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError("naive timestamp")
            value = value.astimezone(UTC)
        elif order.value_kind == "int" and (
            not isinstance(value, int) or isinstance(value, bool) or abs(value) > order.max_id
        ):
            raise ValueError("not an integer in range")
        elif order.value_kind == "str" and (not isinstance(value, str) or "\x00" in value):
            raise ValueError("not a string")
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    return value, last_id


async def paginate(
    session: AsyncSession,
    stmt: Select[M],
    order: SortOrder,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[M], str | None]:
    """Run ``stmt`` for one page; return the rows and the cursor of the next page, if any."""
    rows = list((await session.scalars(_one_page(stmt, order, limit, cursor))).all())
    return _split(rows, order, limit)


async def paginate_rows(
    session: AsyncSession,
    stmt: Select[*tuple[Any, ...]],
    order: SortOrder,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Row[*tuple[Any, ...]]], str | None]:
    """``paginate`` for a statement of several columns: each row whole, the sort columns
    among them under their own names."""
    rows = list((await session.execute(_one_page(stmt, order, limit, cursor))).all())
    return _split(rows, order, limit)


def _one_page(stmt: S, order: SortOrder, limit: int, cursor: str | None) -> S:
    """``stmt`` narrowed to the rows after ``cursor``, in order, one more than a page."""
    columns: tuple[Any, ...] = (
        (order.id_column,) if order.by_id_only else (order.key(order.column), order.id_column)
    )
    if cursor is not None:
        value, last_id = decode_cursor(order, cursor)
        key: Any = order.id_column if order.by_id_only else tuple_(*columns)
        after: Any = (
            last_id
            if order.by_id_only
            else tuple_(
                order.key(literal(value, order.column.type)),
                literal(last_id, order.id_column.type),
            )
        )
        stmt = stmt.where(key < after if order.descending else key > after)
    stmt = stmt.order_by(*(c.desc() if order.descending else c.asc() for c in columns))
    return stmt.limit(limit + 1)


def _split(rows: list[R], order: SortOrder, limit: int) -> tuple[list[R], str | None]:
    if len(rows) > limit:
        return rows[:limit], encode_cursor(order, rows[limit - 1])
    return rows, None

"""The products CSV: reading and checking an upload, and upserting it by SKU."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, ValidationError
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    literal,
    or_,
    select,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from inventory import events
from inventory.csvio.cells import restore
from inventory.errors import UnsupportedMediaType, ValidationFailed, field_error
from inventory.kit.money import UnitPrice
from inventory.kit.persistence import insert_for
from inventory.kit.schemas import LongText, Name
from inventory.models import Category, Product, Supplier
from inventory.models.columns import utcnow
from inventory.products.schemas import Quantity, Sku

COLUMNS = (
    "sku",
    "name",
    "description",
    "category",
    "supplier",
    "unit_price",
    "reorder_level",
    "is_active",
)
EXPORT_COLUMNS = ("id", *COLUMNS)
BATCH = 1000


def _blank_is_none(value: object) -> object:
    return None if value == "" else value


def _blank_is(default: object) -> Callable[[object], object]:
    return lambda value: default if value == "" else value


Optional = BeforeValidator(_blank_is_none)
CategoryName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


class ProductRow(BaseModel):
    """One data row; values arrive as text and are parsed leniently ("5", "true")."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku
    name: Name
    description: Annotated[LongText | None, Optional] = None
    category: Annotated[CategoryName | None, Optional] = None
    supplier: Annotated[Name | None, Optional] = None
    unit_price: UnitPrice
    reorder_level: Annotated[Quantity, BeforeValidator(_blank_is("0"))] = 0
    is_active: Annotated[bool, BeforeValidator(_blank_is("true"))] = True


class CsvSyntaxError(Exception):
    """A row that is not valid CSV (an open quote, say); nothing after it can be read."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class CheckedFile:
    """A decoded file whose header is right; rows are validated separately."""

    def __init__(self, text: str) -> None:
        self.text = text

    def records(self) -> Iterable[tuple[int, list[str]]]:
        """(first line, fields) for every data row; the header is line 1.

        A quoted cell may span lines; a row is numbered by the line it starts on.
        """
        reader = csv.reader(io.StringIO(self.text, newline=""), strict=True)
        next(reader)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise CsvSyntaxError(start, str(exc)) from None
            if fields:  # a blank line is not a row
                yield start, fields


def decode(content: bytes) -> str:
    """UTF-8 text (a BOM is allowed); 415 for anything else."""
    if b"\x00" in content:
        raise UnsupportedMediaType("The file is binary, not a UTF-8 CSV text file.")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedMediaType(
            f"The file is not UTF-8 text (invalid byte at offset {exc.start})."
        ) from None


def check_header(text: str) -> tuple[CheckedFile, list[str]]:
    """The file and its header, or 422 naming every missing and unknown column."""

    def refuse(message: str) -> ValidationFailed:
        return ValidationFailed(message, [field_error(("body", "file"), message, "csv_header")])

    try:
        header = next(csv.reader(io.StringIO(text, newline=""), strict=True), None)
    except csv.Error as exc:
        raise refuse(f"The header line is not valid CSV: {exc}.") from None
    if not header:
        raise refuse("The file is empty.")
    header = [name.strip() for name in header]
    unknown = [name for name in header if name not in EXPORT_COLUMNS]
    missing = [name for name in COLUMNS if name not in header]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    problems = []
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown columns: {', '.join(unknown)}")
    if duplicated:
        problems.append(f"repeated columns: {', '.join(duplicated)}")
    if problems:
        expected = ",".join(COLUMNS)
        raise refuse(f"The header must be {expected} (id optional): {'; '.join(problems)}.")
    checked = CheckedFile(text)
    try:
        if next(iter(checked.records()), None) is None:
            raise refuse("The file has a header but no rows.")
    except CsvSyntaxError:
        pass  # there is a row; validation reports what is wrong with it
    return checked, header


MAX_ERRORS = 1000
"""Errors kept per job; beyond them only a count, so a bad large file stays small."""


@dataclass
class Validation:
    """What the first pass learned: the row count, the errors, and the names to create."""

    total: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    categories: set[str] = field(default_factory=set)
    suppliers: set[str] = field(default_factory=set)

    def add_error(self, error: dict[str, Any]) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error)

    def reported_errors(self) -> list[dict[str, Any]]:
        hidden = self.error_count - len(self.errors)
        more = [_error(None, None, f"… and {hidden} more errors")] if hidden else []
        return self.errors + more


def _parse(header: Sequence[str], line: int, fields: list[str]) -> ProductRow:
    values = {
        name: restore(value) for name, value in zip(header, fields, strict=True) if name != "id"
    }
    return ProductRow.model_validate(values)


def validate(
    checked: CheckedFile, header: Sequence[str], on_progress: Callable[[int], None] = lambda n: None
) -> Validation:
    """First pass: check every row, keeping only what the second pass needs (no rows)."""
    result = Validation()
    first_line_of: dict[str, int] = {}
    try:
        for line, fields in checked.records():
            result.total += 1
            if result.total % BATCH == 0:
                on_progress(result.total)
            if len(fields) != len(header):
                message = f"expected {len(header)} fields, found {len(fields)}"
                result.add_error(_error(line, None, message))
                continue
            try:
                row = _parse(header, line, fields)
            except ValidationError as exc:
                for e in exc.errors(include_input=False):
                    result.add_error(_error(line, str(e["loc"][0]) if e["loc"] else None, e["msg"]))
                continue
            if row.sku in first_line_of:
                earlier = first_line_of[row.sku]
                result.add_error(
                    _error(line, "sku", f"SKU {row.sku} already appears on row {earlier}")
                )
                continue
            first_line_of[row.sku] = line
            if row.category:
                result.categories.add(row.category)
            if row.supplier:
                result.suppliers.add(row.supplier)
    except CsvSyntaxError as exc:
        message = f"not valid CSV: {exc}; nothing after it was read"
        result.add_error(_error(exc.line, None, message))
    return result


def batches(checked: CheckedFile, header: Sequence[str]) -> Iterator[list[ProductRow]]:
    """Second pass over a file ``validate`` passed: its rows, BATCH at a time."""
    batch: list[ProductRow] = []
    for line, fields in checked.records():
        batch.append(_parse(header, line, fields))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _error(row: int | None, column: str | None, message: str) -> dict[str, Any]:
    return {"row": row, "column": column, "message": message}


async def apply(
    session: AsyncSession, validation: Validation, rows: AsyncIterator[list[ProductRow]]
) -> None:
    """Upsert ``rows`` by SKU in ``session``'s transaction, creating missing categories and
    suppliers by name. Unchanged products keep their version and timestamps. Rows arrive
    in batches, so memory does not grow with the file."""
    category_ids = await _ids_by_name(session, Category, validation.categories)
    supplier_ids = await _ids_by_name(session, Supplier, validation.suppliers)
    now = utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        driver = await _staging_table(session)
    else:
        upsert = _upsert(insert_for(session, Product).values(version=1, created_at=now))
    async for batch in rows:
        records = [
            (
                row.sku,
                row.name,
                row.description,
                category_ids.get(row.category) if row.category else None,
                supplier_ids.get(row.supplier) if row.supplier else None,
                row.unit_price,
                row.reorder_level,
                row.is_active,
            )
            for row in batch
        ]
        if postgres:
            await driver.copy_records_to_table("import_products", records=records, columns=STAGED)
        else:
            params = [dict(zip(STAGED, r, strict=True)) | {"updated_at": now} for r in records]
            await session.execute(upsert, params)
    if postgres:
        source = select(*(_staging.c[c] for c in STAGED), literal(1), literal(now), literal(now))
        statement = postgresql.insert(Product).from_select(
            [*STAGED, "version", "created_at", "updated_at"], source
        )
        await session.execute(_upsert(statement))
    events.record(
        session, *(events.EntriesChanged(t) for t in ("products", "categories", "suppliers"))
    )


STAGED = (
    "sku",
    "name",
    "description",
    "category_id",
    "supplier_id",
    "unit_price",
    "reorder_level",
    "is_active",
)
_COMPARED = STAGED[1:]

_staging = Table(
    "import_products",
    MetaData(),
    Column("sku", String),
    Column("name", String),
    Column("description", String),
    Column("category_id", Integer),
    Column("supplier_id", Integer),
    Column("unit_price", Numeric(12, 2)),
    Column("reorder_level", Integer),
    Column("is_active", Boolean),
)


def _upsert(statement: Any) -> Any:
    """ON CONFLICT (sku): take the new values, bump the version, but only if something changed."""
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["sku"],
        set_={
            **{column: excluded[column] for column in _COMPARED},
            "version": Product.version + 1,
            "updated_at": excluded["updated_at"],
        },
        where=or_(*(getattr(Product, c).is_distinct_from(excluded[c]) for c in _COMPARED)),
    )


async def _staging_table(session: AsyncSession) -> Any:
    """PostgreSQL: a temporary table for COPY, dropped at commit; returns the asyncpg connection."""
    connection = await session.connection()
    await connection.execute(
        sql_text(
            "CREATE TEMP TABLE import_products (sku text, name text, description text, "
            "category_id integer, supplier_id integer, unit_price numeric(12, 2), "
            "reorder_level integer, is_active boolean) ON COMMIT DROP"
        )
    )
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def _ids_by_name(
    session: AsyncSession, model: type[Category] | type[Supplier], names: set[str]
) -> dict[str, int]:
    ids: dict[str, int] = {}
    ordered = sorted(names)
    for start in range(0, len(ordered), BATCH):
        chunk = ordered[start : start + BATCH]
        await session.execute(
            insert_for(session, model)
            .values([{"name": n, "created_at": utcnow(), "updated_at": utcnow()} for n in chunk])
            .on_conflict_do_nothing(index_elements=["name"])
        )
        found = await session.execute(select(model.name, model.id).where(model.name.in_(chunk)))
        ids.update((name, id_) for name, id_ in found)
    return ids

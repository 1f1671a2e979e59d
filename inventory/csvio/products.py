"""The products CSV: reading and checking an upload, and upserting it by SKU."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
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

from inventory.csvio.cells import restore
from inventory.csvio.upload import UnsupportedMediaType
from inventory.db import utcnow
from inventory.errors import ValidationFailed, field_error
from inventory.kit.persistence import insert_for
from inventory.kit.schemas import LongText, Name
from inventory.models import Category, Product, Supplier
from inventory.products.schemas import Quantity, Sku, UnitPrice

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


def validate(
    checked: CheckedFile, header: Sequence[str], on_progress: Callable[[int], None] = lambda n: None
) -> tuple[list[ProductRow], list[dict[str, Any]], int]:
    """Every valid row, every error ({row, column, message}), and the number of rows."""
    rows: list[ProductRow] = []
    errors: list[dict[str, Any]] = []
    first_line_of: dict[str, int] = {}
    total = 0
    try:
        for line, fields in checked.records():
            total += 1
            if total % BATCH == 0:
                on_progress(total)
            if len(fields) != len(header):
                errors.append(
                    _error(line, None, f"expected {len(header)} fields, found {len(fields)}")
                )
                continue
            values = {
                name: restore(value)
                for name, value in zip(header, fields, strict=True)
                if name != "id"
            }
            try:
                row = ProductRow.model_validate(values)
            except ValidationError as exc:
                errors.extend(
                    _error(line, str(e["loc"][0]) if e["loc"] else None, e["msg"])
                    for e in exc.errors(include_input=False)
                )
                continue
            if row.sku in first_line_of:
                errors.append(
                    _error(
                        line,
                        "sku",
                        f"SKU {row.sku} already appears on row {first_line_of[row.sku]}",
                    )
                )
                continue
            first_line_of[row.sku] = line
            rows.append(row)
    except CsvSyntaxError as exc:
        errors.append(_error(exc.line, None, f"not valid CSV: {exc}; nothing after it was read"))
    return rows, errors, total


def _error(row: int, column: str | None, message: str) -> dict[str, Any]:
    return {"row": row, "column": column, "message": message}


async def apply(session: AsyncSession, rows: Sequence[ProductRow]) -> None:
    """Upsert ``rows`` by SKU in ``session``'s transaction, creating missing categories and
    suppliers by name. Unchanged products keep their version and timestamps."""
    category_ids = await _ids_by_name(session, Category, {r.category for r in rows if r.category})
    supplier_ids = await _ids_by_name(session, Supplier, {r.supplier for r in rows if r.supplier})
    now = utcnow()
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
        for row in rows
    ]
    if session.get_bind().dialect.name == "postgresql":
        await _upsert_via_copy(session, records, now)
        return
    upsert = _upsert(insert_for(session, Product).values(version=1, created_at=now))
    for start in range(0, len(records), BATCH):
        batch = [
            dict(zip(STAGED, record, strict=True)) | {"updated_at": now}
            for record in records[start : start + BATCH]
        ]
        await session.execute(upsert, batch)


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


async def _upsert_via_copy(session: AsyncSession, records: list[tuple[Any, ...]], now: Any) -> None:
    """PostgreSQL: COPY the rows into a temporary table, then one INSERT ... SELECT upsert."""
    connection = await session.connection()
    await connection.execute(
        sql_text(
            "CREATE TEMP TABLE import_products (sku text, name text, description text, "
            "category_id integer, supplier_id integer, unit_price numeric(12, 2), "
            "reorder_level integer, is_active boolean) ON COMMIT DROP"
        )
    )
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table("import_products", records=records, columns=STAGED)
    source = select(*(_staging.c[c] for c in STAGED), literal(1), literal(now), literal(now))
    statement = postgresql.insert(Product).from_select(
        [*STAGED, "version", "created_at", "updated_at"], source
    )
    await connection.execute(_upsert(statement))
    await connection.execute(sql_text("DROP TABLE import_products"))


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

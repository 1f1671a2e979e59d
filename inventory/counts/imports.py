"""A count's lines from a CSV file (`sku,counted`): a paper count typed up, or a scanner's
export, recorded through the same rule as one line at a time, every row or none."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.counts import service
from inventory.counts.schemas import CountLineRecord
from inventory.csvio.cells import restore
from inventory.errors import Conflict, UnsupportedMediaType, ValidationFailed, field_error
from inventory.models import CountStatus, Product
from inventory.stock.schemas import MAX_QUANTITY

COLUMNS = ("sku", "counted")
MAX_ERRORS = 100
"""Problems listed before the rest are left out (the file is refused either way)."""


@dataclass(frozen=True)
class CountImport:
    count_id: int
    recorded: int
    """Rows recorded (a line counted before is counted again)."""
    differing: int
    """Of those, lines whose counted figure differs from the ledger's."""
    net: int
    """The sum of their differences."""
    uncounted: int
    """Lines of the count still not counted."""


@dataclass(frozen=True)
class _Row:
    number: int
    sku: str
    counted: int


def _row_error(number: int, column: str | None, message: str) -> dict[str, object]:
    loc: tuple[str | int, ...] = ("row", number) if column is None else ("row", number, column)
    where = f"row {number}" + (f", {column}" if column else "")
    return field_error(loc, f"{where}: {message}", "invalid_row")


def read_rows(content: bytes) -> list[_Row]:
    """The file's rows; ValidationFailed naming every bad row (numbered as a spreadsheet
    numbers them, the header being row 1)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedMediaType("the file is not UTF-8 text") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip().lower() for cell in next(reader, [])]
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise ValidationFailed(
            f"The file needs a header row with the columns {', '.join(COLUMNS)}; "
            f"missing columns: {', '.join(missing)}.",
            [field_error(("header",), f"missing columns: {', '.join(missing)}", "missing_column")],
        )
    sku_at, counted_at = header.index("sku"), header.index("counted")
    rows, errors = [], []
    first_row: dict[str, int] = {}
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        cells += [""] * (len(header) - len(cells))
        sku = restore(cells[sku_at].strip()).upper()
        counted = cells[counted_at].strip()
        if not sku:
            errors.append(_row_error(number, "sku", "no SKU"))
        elif sku in first_row:
            errors.append(_row_error(number, "sku", f"{sku} is already on row {first_row[sku]}"))
        else:
            first_row[sku] = number
        if not (counted.isascii() and counted.isdigit()) or int(counted) > MAX_QUANTITY:
            errors.append(
                _row_error(
                    number, "counted", f"{counted!r} is not a whole number from 0 to {MAX_QUANTITY}"
                )
            )
        elif sku:
            rows.append(_Row(number, sku, int(counted)))
    if errors:
        raise _refused(errors)
    if not rows:
        raise ValidationFailed(
            "The file has no rows to record.", [field_error(("file",), "no rows", "empty")]
        )
    return rows


def _refused(errors: list[dict[str, object]]) -> ValidationFailed:
    more = len(errors) - MAX_ERRORS
    listed = errors[:MAX_ERRORS]
    if more > 0:
        listed.append(field_error(("file",), f"… and {more} more", "invalid_row"))
    return ValidationFailed(f"{len(errors)} rows cannot be recorded; nothing was recorded.", listed)


async def import_count(
    session: AsyncSession,
    count_id: int,
    content: bytes,
    on_progress: Callable[[int, int], None] | None = None,
) -> CountImport:
    """Record every row of ``content`` in the open count ``count_id``, or none.

    A SKU that matches no product, or a product that is not in the count, refuses
    the whole file with the row numbers. Each line is recorded by
    ``service.record_line``, so its ``counted_at`` is the moment it is recorded.
    On refusal the caller's transaction must be rolled back (a unit of work does).
    """
    rows = read_rows(content)
    count = await service.get_count(session, count_id)
    if count.status is not CountStatus.open:
        raise Conflict(f"count {count_id} is {count.status.value}; lines cannot be recorded")
    found = await session.execute(
        select(Product.sku, Product.id).where(Product.sku.in_([row.sku for row in rows]))
    )
    by_sku: dict[str, int] = dict(found.all())
    in_count = {line.product_id for line in count.lines}
    errors = []
    for row in rows:
        if row.sku not in by_sku:
            errors.append(_row_error(row.number, "sku", f"no product has SKU {row.sku}"))
        elif by_sku[row.sku] not in in_count:
            errors.append(_row_error(row.number, "sku", f"{row.sku} is not in count {count_id}"))
    if errors:
        raise _refused(errors)
    differing = net = 0
    for done, row in enumerate(rows, start=1):
        line = await service.record_line(
            session, count_id, by_sku[row.sku], CountLineRecord(counted=row.counted)
        )
        if line.difference:
            differing += 1
            net += line.difference
        if on_progress is not None:
            on_progress(done, len(rows))
    uncounted = sum(1 for line in count.lines if line.counted is None)
    return CountImport(count_id, len(rows), differing, net, uncounted)

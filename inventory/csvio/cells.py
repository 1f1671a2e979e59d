"""CSV cells: formula-injection neutralisation on the way out, its exact reversal on the
way in, and lines written byte for byte as PostgreSQL's COPY writes them."""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _looks_neutralised_or_formula(value: str) -> bool:
    return value.lstrip("'").startswith(FORMULA_STARTS)


def neutralise(value: str) -> str:
    """Prefix a cell a spreadsheet would run as a formula with ``'`` (OWASP's advice).

    Text that already starts with ``'`` before a formula character gets one
    more, so ``restore`` can always tell the two apart.
    """
    return "'" + value if _looks_neutralised_or_formula(value) else value


def restore(value: str) -> str:
    """Undo ``neutralise`` exactly, so an exported file imports back unchanged."""
    if value.startswith("'") and _looks_neutralised_or_formula(value):
        return value[1:]
    return value


def text(value: object) -> str:
    """A cell for any value: neutralised for text; numbers as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return neutralise(value) if isinstance(value, str) else str(value)


def csv_line(cells: Iterable[str | None]) -> str:
    """One CSV line as PostgreSQL's COPY (FORMAT csv) writes it: NULL is an empty cell,
    an empty string is ``""``, and a cell with a comma, quote, CR or LF is quoted."""
    out = []
    for cell in cells:
        if cell is None:
            out.append("")
        elif cell == "" or any(c in cell for c in ',"\r\n'):
            out.append('"' + cell.replace('"', '""') + '"')
        else:
            out.append(cell)
    return ",".join(out) + "\n"

"""What both order kinds check of what their lines name: products that exist and may move,
warehouses that exist, and order lines named once.

A name that does not exist is a 422 at the field that holds it (``["lines",
2, "product_id"]``); a product that exists but is inactive is a 409, since
its stock cannot move and the order could never be fulfilled.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.errors import Conflict, ValidationFailed, field_error
from inventory.models import Product, Warehouse


def missing(loc: tuple[str | int, ...], message: str) -> ValidationFailed:
    """The refusal of one name that does not exist."""
    return ValidationFailed(
        "The order refers to entries that do not exist.",
        [field_error(loc, message, "missing_reference")],
    )


async def line_products(session: AsyncSession, product_ids: Sequence[int]) -> dict[int, Product]:
    """The products the lines name (``product_ids[i]`` is line i's), by id; ValidationFailed
    naming each line whose product does not exist. Whether they are active is the caller's
    next check (``refuse_inactive``), once every name is known to exist."""
    wanted = sorted(set(product_ids))
    found = {p.id: p for p in await session.scalars(select(Product).where(Product.id.in_(wanted)))}
    absent = [
        field_error(
            ("lines", index, "product_id"),
            f"product {product_id} does not exist",
            "missing_reference",
        )
        for index, product_id in enumerate(product_ids)
        if product_id not in found
    ]
    if absent:
        raise ValidationFailed("The order names products that do not exist.", absent)
    return found


def refuse_inactive(products: Iterable[Product]) -> None:
    """Conflict when any of the products is inactive: its stock cannot move."""
    inactive = sorted(p.id for p in products if not p.is_active)
    if inactive:
        listed = ", ".join(str(p) for p in inactive)
        raise Conflict(f"inactive products cannot be ordered (their stock cannot move): {listed}")


async def line_warehouses(session: AsyncSession, warehouse_ids: Sequence[int]) -> None:
    """ValidationFailed naming each line whose warehouse (``warehouse_ids[i]``) does not
    exist."""
    wanted = sorted(set(warehouse_ids))
    found = set(await session.scalars(select(Warehouse.id).where(Warehouse.id.in_(wanted))))
    absent = [
        field_error(
            ("lines", index, "warehouse_id"),
            f"warehouse {warehouse_id} does not exist",
            "missing_reference",
        )
        for index, warehouse_id in enumerate(warehouse_ids)
        if warehouse_id not in found
    ]
    if absent:
        raise ValidationFailed("The order names warehouses that do not exist.", absent)


def named_lines(noun: str, known: Collection[int], asked: Sequence[int]) -> None:
    """ValidationFailed naming each asked line id (``asked[i]`` is request line i's) that is
    not one of the order's ``known`` lines, or repeats one named before it."""
    seen: set[int] = set()
    refused = []
    for index, line_id in enumerate(asked):
        if line_id not in known:
            refused.append(
                field_error(
                    ("lines", index, "line_id"),
                    f"line {line_id} is not a line of {noun}",
                    "missing_reference",
                )
            )
        elif line_id in seen:
            refused.append(
                field_error(
                    ("lines", index, "line_id"),
                    f"line {line_id} is named more than once",
                    "duplicate",
                )
            )
        seen.add(line_id)
    if refused:
        raise ValidationFailed("The request names lines it cannot take.", refused)

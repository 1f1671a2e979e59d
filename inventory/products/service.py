"""Business rules for products: references, unique SKUs, optimistic concurrency."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from inventory import events
from inventory.errors import PreconditionFailed, ValidationFailed, field_error
from inventory.kit.pagination import SortOrder, paginate
from inventory.kit.persistence import delete_unreferenced, get_or_404, row_or_404, save
from inventory.models import Category, Product, StockLevel, Supplier
from inventory.products.schemas import ProductCreate, ProductSort, ProductUpdate

NOUN = "product"
CHANGED = events.EntriesChanged("products")

SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])

SORT_ORDERS = {
    ProductSort.sku: SortOrder("sku", Product.sku, Product.id, "str"),
    ProductSort.name: SortOrder("name", Product.name, Product.id, "str"),
    ProductSort.updated_at: SortOrder("updated_at", Product.updated_at, Product.id, "datetime"),
    ProductSort.updated_at_desc: SortOrder(
        "-updated_at", Product.updated_at, Product.id, "datetime", descending=True
    ),
}


@dataclass(frozen=True)
class ProductFilter:
    q: str | None = None
    category_id: int | None = None
    supplier_id: int | None = None
    is_active: bool | None = None
    below_reorder: bool | None = None


def on_hand_total() -> ColumnElement[int]:
    """Units of a product on hand across all warehouses (0 with no stock rows)."""
    return (
        select(func.coalesce(func.sum(StockLevel.quantity), 0))
        .where(StockLevel.product_id == Product.id)
        .scalar_subquery()
    )


def filtered(stmt: SelectT, flt: ProductFilter) -> SelectT:
    """``stmt`` narrowed by ``flt``; works for any select over the products table."""
    if flt.q:
        stmt = stmt.where(
            Product.sku.icontains(flt.q, autoescape=True)
            | Product.name.icontains(flt.q, autoescape=True)
        )
    if flt.category_id is not None:
        stmt = stmt.where(Product.category_id == flt.category_id)
    if flt.supplier_id is not None:
        stmt = stmt.where(Product.supplier_id == flt.supplier_id)
    if flt.is_active is not None:
        stmt = stmt.where(Product.is_active.is_(flt.is_active))
    if flt.below_reorder is not None:
        below = on_hand_total() <= Product.reorder_level
        stmt = stmt.where(below if flt.below_reorder else ~below)
    return stmt


async def get_product(session: AsyncSession, product_id: int) -> Product:
    return await get_or_404(session, Product, product_id, NOUN)


async def read_product(connection: AsyncConnection, product_id: int) -> Row[Any]:
    """The product's row as an answer shows it: ``get_product`` without the ORM."""
    return await row_or_404(connection, Product, product_id, NOUN)


async def list_products(
    session: AsyncSession,
    flt: ProductFilter,
    *,
    sort: ProductSort = ProductSort.sku,
    limit: int,
    cursor: str | None,
) -> tuple[list[Product], str | None]:
    stmt = filtered(select(Product), flt)
    return await paginate(session, stmt, SORT_ORDERS[sort], limit=limit, cursor=cursor)


async def create_product(session: AsyncSession, data: ProductCreate) -> Product:
    await _check_references(session, data.category_id, data.supplier_id)
    product = Product(**data.model_dump())
    await save(session, product, duplicate=_duplicate_sku(data.sku))
    events.record(session, CHANGED)
    return product


async def update_product(
    session: AsyncSession,
    product_id: int,
    data: ProductUpdate,
    *,
    expected_versions: Collection[int] | None = None,
) -> Product:
    """Apply the fields that were sent; refuse when the product is not at an expected version.

    The row is locked while it is read, so concurrent updates without a
    precondition apply one after another instead of failing on a stale version.
    """
    product = await get_or_404(session, Product, product_id, NOUN, for_update=True)
    if expected_versions is not None and product.version not in expected_versions:
        raise PreconditionFailed(
            f"product {product_id} is at version {product.version}; reload it and retry"
        )
    changes = data.model_dump(exclude_unset=True)
    await _check_references(session, changes.get("category_id"), changes.get("supplier_id"))
    await save(session, product, duplicate=_duplicate_sku(changes.get("sku")), changes=changes)
    events.record(session, CHANGED)
    return product


async def delete_product(session: AsyncSession, product_id: int) -> None:
    await delete_unreferenced(
        session, Product, product_id, NOUN, referenced_by="stock levels or movements"
    )
    events.record(session, CHANGED)


async def _check_references(
    session: AsyncSession, category_id: int | None, supplier_id: int | None
) -> None:
    errors = []
    if category_id is not None and await session.get(Category, category_id) is None:
        errors.append(
            field_error(
                ("category_id",),
                f"category {category_id} does not exist",
                "missing_reference",
            )
        )
    if supplier_id is not None and await session.get(Supplier, supplier_id) is None:
        errors.append(
            field_error(
                ("supplier_id",),
                f"supplier {supplier_id} does not exist",
                "missing_reference",
            )
        )
    if errors:
        raise ValidationFailed("The product refers to entries that do not exist.", errors)


def _duplicate_sku(sku: str | None) -> str:
    return f"a product with SKU {sku!r} already exists"


async def get_by_sku(session: AsyncSession, sku: str) -> Product | None:
    """The product with this SKU, matched as it is stored (upper-case)."""
    return await session.scalar(select(Product).where(Product.sku == sku.strip().upper()))

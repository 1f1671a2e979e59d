"""Business rules for products: references, unique SKUs, optimistic concurrency."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from inventory import events
from inventory.errors import PreconditionFailed, ValidationFailed, field_error
from inventory.kit.pagination import paginate
from inventory.kit.persistence import delete_unreferenced, get_or_404, row_or_404, save
from inventory.models import Category, Product, Supplier
from inventory.products.filters import SORT_ORDERS, ProductFilter, ProductSort
from inventory.products.schemas import ProductCreate, ProductUpdate

NOUN = "product"
CHANGED = events.EntriesChanged("products")


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
    stmt = select(Product).where(*flt.conditions())
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

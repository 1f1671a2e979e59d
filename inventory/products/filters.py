"""How a product list is narrowed and ordered: one declaration for list, export and GraphQL."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints
from sqlalchemy import ColumnElement, func, select

from inventory.kit.filters import ListFilter
from inventory.kit.pagination import SortOrder
from inventory.kit.schemas import NO_NUL, RefId
from inventory.models import Product, StockLevel

ProductSearch = Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]


class ProductSort(StrEnum):
    sku = "sku"
    name = "name"
    updated_at = "updated_at"
    updated_at_desc = "-updated_at"


SORT_ORDERS = {
    # SKUs are stored upper-case, so their byte order is already case-insensitive.
    ProductSort.sku: SortOrder("sku", Product.sku, Product.id, "str"),
    ProductSort.name: SortOrder("name", Product.name, Product.id, "str", fold_case=True),
    ProductSort.updated_at: SortOrder("updated_at", Product.updated_at, Product.id, "datetime"),
    ProductSort.updated_at_desc: SortOrder(
        "-updated_at", Product.updated_at, Product.id, "datetime", descending=True
    ),
}


class ProductFilter(ListFilter):
    q: ProductSearch | None = Field(default=None, description="SKU or name contains")
    category_id: RefId | None = None
    supplier_id: RefId | None = None
    is_active: bool | None = None
    below_reorder: bool | None = Field(
        default=None, description="Total stock on hand at or below the reorder level"
    )

    def conditions(self) -> list[ColumnElement[bool]]:
        """The filter in SQL, for any select over the products table."""
        conditions: list[ColumnElement[bool]] = []
        if self.q:
            conditions.append(
                Product.sku.icontains(self.q, autoescape=True)
                | Product.name.icontains(self.q, autoescape=True)
            )
        if self.category_id is not None:
            conditions.append(Product.category_id == self.category_id)
        if self.supplier_id is not None:
            conditions.append(Product.supplier_id == self.supplier_id)
        if self.is_active is not None:
            conditions.append(Product.is_active.is_(self.is_active))
        if self.below_reorder is not None:
            below = on_hand_total() <= Product.reorder_level
            conditions.append(below if self.below_reorder else ~below)
        return conditions


def on_hand_total() -> ColumnElement[int]:
    """Units of a product on hand across all warehouses (0 with no stock rows)."""
    return (
        select(func.coalesce(func.sum(StockLevel.quantity), 0))
        .where(StockLevel.product_id == Product.id)
        .scalar_subquery()
    )

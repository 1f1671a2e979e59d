"""Per-request DataLoaders: nested fields load in one query per kind, never one per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from inventory.models import Category, Product, StockLevel, Supplier, Warehouse
from inventory.models.columns import IdMixin, utcnow
from inventory.stock import holds

M = TypeVar("M", bound=IdMixin)
K = TypeVar("K")
T = TypeVar("T")
MISSING: Any = object()
"""What ``loaded`` gives for a key its loader has not finished loading."""


class Loader(DataLoader[K, T]):
    """A DataLoader that also knows, without awaiting, the values it has finished loading."""

    def __init__(self, load_fn: Callable[[list[K]], Awaitable[Sequence[T]]]) -> None:
        self.ready: dict[K, T] = {}

        async def load_and_keep(keys: list[K]) -> Sequence[T]:
            values = await load_fn(keys)
            self.ready.update(zip(keys, values, strict=True))
            return values

        super().__init__(load_fn=load_and_keep)

    def prime_many(self, data: Mapping[K, T], force: bool = False) -> None:
        super().prime_many(data, force)
        for key, value in data.items():
            if force or key not in self.ready:
                self.ready[key] = value

    def clear(self, key: K) -> None:
        self.ready.pop(key, None)
        super().clear(key)

    def clear_many(self, keys: Iterable[K]) -> None:
        keys = list(keys)
        for key in keys:
            self.ready.pop(key, None)
        super().clear_many(keys)

    def clear_all(self) -> None:
        self.ready.clear()
        super().clear_all()


def loaded(loader: DataLoader[K, T], key: K) -> T:
    """The value ``loader`` already holds for ``key``, or MISSING.

    A field whose value was fetched ahead (see ``prefetch``) returns it at once:
    graphql-core completes a plain value far faster than an awaitable, which is
    most of the cost of a page of nested objects.
    """
    if isinstance(loader, Loader):
        return cast(T, loader.ready.get(key, MISSING))
    return cast(T, MISSING)


# Rows already in the session may be stale: stock levels change by plain UPDATE.
_FRESH = {"populate_existing": True}
SessionScope = Callable[[], AbstractAsyncContextManager[AsyncSession]]


class Loaders:
    def __init__(self, session: SessionScope) -> None:
        self._session = session
        self.category = self._by_id(Category)
        self.supplier = self._by_id(Supplier)
        self.warehouse = self._by_id(Warehouse)
        self.product = self._by_id(Product)
        self.levels_of_product: Loader[int, list[StockLevel]] = Loader(self._levels_of_products)

    def _by_id(self, model: type[M]) -> Loader[int, M | None]:
        async def load(ids: Sequence[int]) -> list[M | None]:
            async with self._session() as session:
                rows = await session.scalars(
                    select(model).where(model.id.in_(ids)).execution_options(**_FRESH)
                )
                found = {row.id: row for row in rows}
            return [found.get(i) for i in ids]

        return Loader(load)

    async def _levels_of_products(self, ids: Sequence[int]) -> list[list[StockLevel]]:
        # Levels are almost always shown with their warehouse: fetch both in one
        # query and prime the warehouse loader, so that field costs nothing more.
        async with self._session() as session:
            rows = await session.execute(
                select(StockLevel, Warehouse)
                .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
                .where(StockLevel.product_id.in_(ids))
                .options(holds.with_reserved(utcnow()))
                .order_by(StockLevel.warehouse_id)
                .execution_options(**_FRESH)
            )
            grouped: dict[int, list[StockLevel]] = defaultdict(list)
            for level, warehouse in rows:
                grouped[level.product_id].append(level)
                self.warehouse.prime(warehouse.id, warehouse)
        return [grouped.get(i, []) for i in ids]

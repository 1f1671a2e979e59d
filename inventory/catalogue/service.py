"""Business rules for categories, suppliers and warehouses.

The three are the same shape (a named entry with one unique key that other
rows refer to), so one ``CatalogueEntries`` serves each; their differences are
data, not code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inventory import events
from inventory.kit.pagination import SortOrder, paginate
from inventory.kit.persistence import delete_unreferenced, get_or_404, save
from inventory.models import Category, Supplier, Warehouse
from inventory.models.columns import IdMixin

M = TypeVar("M", bound=IdMixin)


@dataclass(frozen=True)
class CatalogueEntries(Generic[M]):
    model: type[M]
    table: str
    noun: str
    unique_field: str
    referenced_by: str
    order: SortOrder

    async def get(self, session: AsyncSession, entry_id: int) -> M:
        return await get_or_404(session, self.model, entry_id, self.noun)

    async def list(
        self, session: AsyncSession, *, limit: int, cursor: str | None
    ) -> tuple[list[M], str | None]:
        return await paginate(session, select(self.model), self.order, limit=limit, cursor=cursor)

    async def create(self, session: AsyncSession, data: BaseModel) -> M:
        entry = self.model(**data.model_dump())
        await save(session, entry, duplicate=self._duplicate(data))
        self._changed(session)
        return entry

    async def update(self, session: AsyncSession, entry_id: int, data: BaseModel) -> M:
        entry = await self.get(session, entry_id)
        changes = data.model_dump(exclude_unset=True)
        await save(session, entry, duplicate=self._duplicate(data), changes=changes)
        self._changed(session)
        return entry

    async def delete(self, session: AsyncSession, entry_id: int) -> None:
        await delete_unreferenced(
            session, self.model, entry_id, self.noun, referenced_by=self.referenced_by
        )
        self._changed(session)

    def _changed(self, session: AsyncSession) -> None:
        events.record(session, events.EntriesChanged(self.table))

    def _duplicate(self, data: BaseModel) -> str:
        value = getattr(data, self.unique_field)
        return f"a {self.noun} with {self.unique_field} {value!r} already exists"


categories = CatalogueEntries(
    model=Category,
    table="categories",
    noun="category",
    unique_field="name",
    referenced_by="products",
    order=SortOrder("name", Category.name, Category.id, "str", fold_case=True),
)
suppliers = CatalogueEntries(
    model=Supplier,
    table="suppliers",
    noun="supplier",
    unique_field="name",
    referenced_by="products",
    order=SortOrder("name", Supplier.name, Supplier.id, "str", fold_case=True),
)
warehouses = CatalogueEntries(
    model=Warehouse,
    table="warehouses",
    noun="warehouse",
    unique_field="code",
    referenced_by="stock levels or movements",
    order=SortOrder("code", Warehouse.code, Warehouse.id, "str"),
)

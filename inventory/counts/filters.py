"""How the list of counts is narrowed, declared once for REST and GraphQL."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlalchemy import ColumnElement

from inventory.kit.filters import ListFilter
from inventory.kit.schemas import RefId
from inventory.models import CountStatus, StockCount


class CountFilter(ListFilter):
    status: Annotated[CountStatus | None, Field(strict=False)] = None
    warehouse_id: RefId | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = []
        if self.status is not None:
            conditions.append(StockCount.status == self.status)
        if self.warehouse_id is not None:
            conditions.append(StockCount.warehouse_id == self.warehouse_id)
        return conditions

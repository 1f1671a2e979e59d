"""The order filters as REST query parameters: one dependency each, for a list and its
export."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from inventory.orders.filters import PurchaseOrderFilter, SalesOrderFilter

PurchaseOrderFilterQuery = Annotated[PurchaseOrderFilter, Query()]
SalesOrderFilterQuery = Annotated[SalesOrderFilter, Query()]

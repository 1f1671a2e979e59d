"""``Product.history``: a product's ledger with the running balance, through the stock
history service REST's route uses."""

from __future__ import annotations

from graphql_schema import types
from graphql_schema.context import ContextInfo
from graphql_schema.inputs import ProductHistoryFilter, as_filter
from graphql_schema.queries import page_size
from inventory.stock import filters as stock_filters
from inventory.stock import history


async def product_history(
    info: ContextInfo,
    product_id: int,
    filter: ProductHistoryFilter | None,
    first: int | None,
    after: str | None,
) -> types.Connection[types.HistoryEntry]:
    flt = as_filter(stock_filters.HistoryFilter, filter)
    async with info.context.session() as session:
        rows, next_cursor = await history.product_history(
            session, product_id, flt, limit=page_size(first), cursor=after
        )
    return types.Connection.of(
        rows, next_cursor, history.HISTORY_ORDER, types.HistoryEntry.of_entry
    )

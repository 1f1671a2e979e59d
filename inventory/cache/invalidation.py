"""Which cached answers a committed change makes stale: the one map from events to namespaces."""

from __future__ import annotations

from collections.abc import Sequence

from inventory.cache.store import CacheTiers
from inventory.events import (
    EntriesChanged,
    Event,
    HoldsChanged,
    OnOrderChanged,
    StockChanged,
    UserChanged,
)
from inventory.unit_of_work import AfterCommit

# What each cached read depends on; a route names the same strings.
PRODUCT = ("products",)
PRODUCT_LIST = ("products", "stock")  # below_reorder reads stock on hand
STOCK_LEVELS = ("stock", "products")  # a level shows its product's reorder level


def invalidator(tiers: CacheTiers) -> AfterCommit:
    """An after-commit listener that moves the touched namespaces to new generations."""

    async def invalidate(committed: Sequence[Event]) -> None:
        namespaces: set[str] = set()
        user_ids: set[int] = set()
        for event in committed:
            if isinstance(event, StockChanged | HoldsChanged | OnOrderChanged):
                namespaces.add("stock")
            elif isinstance(event, EntriesChanged):
                namespaces.add(event.table)
            elif isinstance(event, UserChanged):
                user_ids.add(event.user_id)
        if namespaces or user_ids:
            await tiers.invalidate(namespaces, user_ids)

    return invalidate

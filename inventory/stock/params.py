"""The stock filters as REST query parameters: one dependency each, for a list and its export,
and the moment a list of levels may be read at."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from inventory.stock.filters import (
    HistoryFilter,
    LedgerBound,
    LedgerFilter,
    LevelFilter,
    ValuationFilter,
)

LevelFilterQuery = Annotated[LevelFilter, Query()]
LedgerFilterQuery = Annotated[LedgerFilter, Query()]
HistoryFilterQuery = Annotated[HistoryFilter, Query()]
ValuationFilterQuery = Annotated[ValuationFilter, Query()]
AsOfQuery = Annotated[
    LedgerBound | None,
    Query(
        description="The levels as they stood at this moment (RFC 3339; without a zone, UTC), "
        "rebuilt from the ledger; `reserved` and `available` are null then",
    ),
]
ValuationAsOfQuery = Annotated[
    LedgerBound | None,
    Query(
        description="The stock's worth at this moment (RFC 3339; without a zone, UTC): each "
        "level's balance and average cost as its last ledger entry by then recorded",
    ),
]

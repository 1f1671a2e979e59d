"""The stock filters as REST query parameters: one dependency each, for a list and its export,
and the moment a list of levels may be read at."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from inventory.stock.filters import HistoryFilter, LedgerBound, LedgerFilter, LevelFilter

LevelFilterQuery = Annotated[LevelFilter, Query()]
LedgerFilterQuery = Annotated[LedgerFilter, Query()]
HistoryFilterQuery = Annotated[HistoryFilter, Query()]
AsOfQuery = Annotated[
    LedgerBound | None,
    Query(
        description="The levels as they stood at this moment (RFC 3339; without a zone, UTC), "
        "rebuilt from the ledger; `reserved` and `available` are null then",
    ),
]

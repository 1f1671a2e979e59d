"""The stock filters as REST query parameters: one dependency each, for a list and its export."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from inventory.stock.filters import LedgerFilter, LevelFilter

LevelFilterQuery = Annotated[LevelFilter, Query()]
LedgerFilterQuery = Annotated[LedgerFilter, Query()]

"""How the stock level list and the ledger are narrowed, declared once for every front."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError
from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

from inventory.kit.filters import ListFilter
from inventory.kit.schemas import RefId
from inventory.models import MovementKind, StockLevel, StockMovement


def _in_utc(moment: datetime) -> datetime:
    """A timestamp without a zone is taken as UTC; one that does not exist in UTC
    (year 1 with a positive offset, say) is refused."""
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("datetime_range", "outside the range of UTC timestamps") from None


LedgerBound = Annotated[datetime, AfterValidator(_in_utc)]
"""A ``since``/``until`` bound of the ledger, compared in UTC."""


class LevelFilter(ListFilter):
    product_id: RefId | None = None
    warehouse_id: RefId | None = None
    below_reorder: bool | None = Field(
        default=None, description="Levels at or below the product's reorder level"
    )

    def conditions(
        self,
        reorder_level: ColumnElement[int] | InstrumentedAttribute[int] | None = None,
        quantity: ColumnElement[int] | None = None,
    ) -> list[ColumnElement[bool]]:
        """``reorder_level``: the product's column, when the query joins products already
        (the level's own correlated subquery would then correlate away its FROM);
        ``quantity``: what ``below_reorder`` compares instead of the level's quantity
        (the quantity rebuilt from the ledger, for a past moment)."""
        conditions = []
        if self.product_id is not None:
            conditions.append(StockLevel.product_id == self.product_id)
        if self.warehouse_id is not None:
            conditions.append(StockLevel.warehouse_id == self.warehouse_id)
        if self.below_reorder is not None:
            level = StockLevel.reorder_level if reorder_level is None else reorder_level
            below = (StockLevel.quantity if quantity is None else quantity) <= level
            conditions.append(below if self.below_reorder else ~below)
        return conditions


class ValuationFilter(ListFilter):
    product_id: RefId | None = None
    warehouse_id: RefId | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = []
        if self.product_id is not None:
            conditions.append(StockLevel.product_id == self.product_id)
        if self.warehouse_id is not None:
            conditions.append(StockLevel.warehouse_id == self.warehouse_id)
        return conditions


class LedgerFilter(ListFilter):
    product_id: RefId | None = None
    warehouse_id: RefId | None = None
    kind: Annotated[MovementKind | None, Field(strict=False)] = None
    since: LedgerBound | None = Field(
        default=None, description="Created at or after (ISO 8601; without a zone, UTC)"
    )
    until: LedgerBound | None = Field(
        default=None, description="Created before (ISO 8601; without a zone, UTC)"
    )

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = []
        if self.product_id is not None:
            conditions.append(StockMovement.product_id == self.product_id)
        if self.warehouse_id is not None:
            conditions.append(StockMovement.warehouse_id == self.warehouse_id)
        if self.kind is not None:
            conditions.append(StockMovement.kind == self.kind)
        if self.since is not None:
            conditions.append(StockMovement.created_at >= self.since)
        if self.until is not None:
            conditions.append(StockMovement.created_at < self.until)
        return conditions


class HistoryFilter(ListFilter):
    """A product's history narrowed to one warehouse and a time span."""

    warehouse_id: RefId | None = Field(
        default=None,
        description="Only this warehouse; the running balance then counts this warehouse only",
    )
    since: LedgerBound | None = Field(
        default=None, description="Created at or after (ISO 8601; without a zone, UTC)"
    )
    until: LedgerBound | None = Field(
        default=None, description="Created before (ISO 8601; without a zone, UTC)"
    )

    def ledger(self, product_id: int) -> LedgerFilter:
        """The same entries as the ledger's filter selects them."""
        return LedgerFilter(
            product_id=product_id,
            warehouse_id=self.warehouse_id,
            since=self.since,
            until=self.until,
        )

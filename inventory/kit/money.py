"""Money in the API: prices and values to the cent, costs to four places, always as JSON text."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, PlainSerializer

CENT = Decimal("0.01")
COST_STEP = Decimal("0.0001")


def _to_cents(value: Decimal) -> Decimal:
    # 0E+999999 passes the digit checks but no database stores it; -0 is 0.
    return value.quantize(CENT) + 0


def _to_cost_step(value: Decimal) -> Decimal:
    return value.quantize(COST_STEP) + 0


UnitPrice = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2, strict=False, allow_inf_nan=False),
    AfterValidator(_to_cents),
]
"""A price as a JSON string (``"12.50"``) or number, at most two decimal places."""

UnitCost = Annotated[
    Decimal,
    Field(ge=0, max_digits=14, decimal_places=4, strict=False, allow_inf_nan=False),
    AfterValidator(_to_cost_step),
]
"""A unit cost as a JSON string (``"3.5000"``) or number, at most four decimal places."""


def price_text(value: Decimal) -> str:
    """A price or a value as the API writes it everywhere: two decimal places, as text."""
    return f"{value:.2f}"


def cost_text(value: Decimal) -> str:
    """A unit cost as the API writes it everywhere: four decimal places, as text."""
    return f"{value:.4f}"


def cost(value: Decimal) -> Decimal:
    """A unit cost rounded to the four places it is kept with (half up)."""
    return value.quantize(COST_STEP, rounding=ROUND_HALF_UP) + 0


def value_of(quantity: int, unit_cost: Decimal) -> Decimal:
    """What ``quantity`` units are worth at ``unit_cost``, to the cent (half up)."""
    return (quantity * unit_cost).quantize(CENT, rounding=ROUND_HALF_UP) + 0


def weighted_average(quantity: int, average: Decimal, added: int, added_cost: Decimal) -> Decimal:
    """The average cost once ``added`` units at ``added_cost`` join ``quantity`` at ``average``."""
    total = quantity + added
    if total <= 0:
        return average
    return cost((quantity * average + added * added_cost) / total)


PriceOut = Annotated[Decimal, PlainSerializer(price_text, return_type=str, when_used="json")]
"""A price or value in an answer: ``"12.50"``."""

CostOut = Annotated[Decimal, PlainSerializer(cost_text, return_type=str, when_used="json")]
"""A unit cost in an answer: ``"3.5000"``."""

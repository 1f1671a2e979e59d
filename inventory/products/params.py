"""The product filter as REST query parameters: one dependency for the list and its CSV export."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from inventory.products.filters import ProductFilter

ProductFilterQuery = Annotated[ProductFilter, Query()]

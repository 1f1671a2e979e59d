"""The count filter as REST query parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from inventory.counts.filters import CountFilter

CountFilterQuery = Annotated[CountFilter, Query()]

"""The base of every list filter: one declaration that each front fills in its own way.

REST reads a filter as one FastAPI query model (the list and its CSV export
share it), GraphQL converts its filter input to it, and the services turn it
into SQL conditions. Fields carry the REST query parameter names.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ListFilter(BaseModel):
    """Unset fields are ``None`` and select everything; unknown query parameters are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

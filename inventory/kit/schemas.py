"""Base classes and field types shared by the request and response schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


class InputModel(BaseModel):
    """Request bodies: unknown fields are refused and values are not coerced.

    A PATCH carrying ``id`` or ``version`` is a mistake worth a 422, and a JSON
    ``"5"`` or ``false`` is not an integer.
    """

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


def upper_stripped(value: object) -> object:
    """Normalise codes before they are checked: `` ab-1 `` is ``AB-1``."""
    return value.strip().upper() if isinstance(value, str) else value


NotNull = AfterValidator(_not_null)
"""For PATCH fields that are optional but may not be set to null."""

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
Email = Annotated[
    str,
    StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", to_lower=True),
]

RefId = Annotated[int, Field(ge=1, le=2**31 - 1)]
"""The id of another entry, within the range of the id columns."""

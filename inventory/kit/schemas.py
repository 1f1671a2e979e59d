"""Base classes and field types shared by the request and response schemas."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

MAX_ID = 2**31 - 1
"""Ids are 32-bit integer columns; a larger one can never exist."""

NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold NUL, so no string input may contain one."""


class InputModel(BaseModel):
    """Request bodies: unknown fields are refused and values are not coerced.

    A PATCH carrying ``id`` or ``version`` is a mistake worth a 422, and a JSON
    ``"5"`` or ``false`` is not an integer.
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    # No model-wide whitespace stripping: each text type below strips itself,
    # and a password must arrive exactly as typed.

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @model_validator(mode="after")
    def _blank_optional_text_is_null(self) -> Self:
        """An optional text left blank is absent: one way to say "none", in the API and CSV."""
        for name, field in type(self).model_fields.items():
            if getattr(self, name) == "" and field.default is None:
                object.__setattr__(self, name, None)
        return self


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


def ascii_upper(value: object) -> object:
    """Upper-case an ASCII code before it is checked: ``ab-1`` is ``AB-1``.

    Non-ASCII text is left alone for the pattern to refuse, rather than
    folded (``"straße".upper()`` would be ``"STRASSE"``).
    """
    return value.upper() if isinstance(value, str) and value.isascii() else value


NotNull = AfterValidator(_not_null)
"""For PATCH fields that are optional but may not be set to null."""

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000)]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", to_lower=True
    ),
]

RefId = Annotated[int, Field(ge=1, le=MAX_ID)]
"""The id of another entry, within the range of the id columns."""

"""Typed mutation errors, and the one place domain exceptions become them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import strawberry
from pydantic import ValidationError as PydanticValidationError
from strawberry.utils.str_converters import to_camel_case

from inventory import errors

T = TypeVar("T")


@strawberry.type
class NotFound:
    message: str


@strawberry.type
class Conflict:
    message: str


@strawberry.type(description="The entry is no longer at the expected version; reload it")
class PreconditionFailed:
    message: str


@strawberry.type
class InsufficientStock:
    message: str
    available: int
    requested: int


@strawberry.type
class FieldError:
    loc: list[str] = strawberry.field(
        description='The argument, then the field, in GraphQL names: ["input", "unitPrice"]'
    )
    msg: str
    type: str


@strawberry.type
class ValidationFailed:
    message: str
    errors: list[FieldError]


StockError = InsufficientStock | NotFound | Conflict | ValidationFailed
"""What a stock write answers with instead of its result."""

EntryError = NotFound | Conflict | ValidationFailed | PreconditionFailed
"""What a catalogue write answers with instead of its result."""

# The failures every write shares; both mappers below turn them into the same types.
_SHARED = (errors.NotFound, errors.Conflict, errors.ValidationFailed, PydanticValidationError)


async def as_result(run: Callable[[], Awaitable[T]]) -> T | StockError:
    """Run a stock write; expected failures come back as typed errors, not exceptions."""
    try:
        return await run()
    except errors.InsufficientStock as exc:
        return InsufficientStock(
            message=exc.detail, available=exc.available, requested=exc.requested
        )
    except _SHARED as exc:
        return _shared(exc)


async def as_entry_result(run: Callable[[], Awaitable[T]]) -> T | EntryError:
    """Run a catalogue write; a stale version (REST's 412) is PreconditionFailed."""
    try:
        return await run()
    except errors.PreconditionFailed as exc:
        return PreconditionFailed(message=exc.detail)
    except _SHARED as exc:
        return _shared(exc)


def _shared(
    exc: errors.NotFound | errors.Conflict | errors.ValidationFailed | PydanticValidationError,
) -> NotFound | Conflict | ValidationFailed:
    if isinstance(exc, errors.NotFound):
        return NotFound(message=exc.detail)
    if isinstance(exc, errors.Conflict):
        return Conflict(message=exc.detail)
    if isinstance(exc, errors.ValidationFailed):
        return ValidationFailed(message=exc.detail, errors=_field_errors(exc.errors))
    # A REST input schema refused the ``input`` argument.
    return ValidationFailed(
        message="The input is not valid.",
        errors=_field_errors(
            {**e, "loc": ("input", *e["loc"])} for e in exc.errors(include_input=False)
        ),
    )


def _field_errors(found: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    return [FieldError(loc=_loc(e["loc"]), msg=e["msg"], type=e["type"]) for e in found]


def _loc(loc: Sequence[str | int]) -> list[str]:
    """REST's location in GraphQL terms: the body is the ``input`` argument, fields camelCase."""
    head, *rest = loc
    return ["input" if head == "body" else str(head)] + [
        to_camel_case(p) if isinstance(p, str) else str(p) for p in rest
    ]

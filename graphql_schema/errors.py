"""Typed mutation errors, and the one place domain exceptions become them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from pydantic import ValidationError as PydanticValidationError

from inventory import errors

T = TypeVar("T")


@strawberry.type
class NotFound:
    message: str


@strawberry.type
class Conflict:
    message: str


@strawberry.type
class InsufficientStock:
    message: str
    available: int
    requested: int


@strawberry.type
class FieldError:
    loc: list[str]
    msg: str
    type: str


@strawberry.type
class ValidationFailed:
    message: str
    errors: list[FieldError]


MutationError = NotFound | Conflict | InsufficientStock | ValidationFailed


async def as_result(run: Callable[[], Awaitable[T]]) -> T | MutationError:
    """Run a service call; expected failures come back as typed errors, not exceptions."""
    try:
        return await run()
    except errors.InsufficientStock as exc:
        return InsufficientStock(
            message=exc.detail, available=exc.available, requested=exc.requested
        )
    except errors.NotFound as exc:
        return NotFound(message=exc.detail)
    except errors.Conflict as exc:
        return Conflict(message=exc.detail)
    except errors.ValidationFailed as exc:
        return ValidationFailed(
            message=exc.detail,
            errors=[
                FieldError(loc=[str(p) for p in e["loc"]], msg=e["msg"], type=e["type"])
                for e in exc.errors
            ],
        )
    except PydanticValidationError as exc:
        return ValidationFailed(
            message="The input is not valid.",
            errors=[
                FieldError(loc=["input", *map(str, e["loc"])], msg=e["msg"], type=e["type"])
                for e in exc.errors(include_input=False)
            ],
        )

"""The one place domain exceptions become GraphQL answers: typed errors, or error codes.

``EXCEPTION_HANDLERS`` go to the schema: when a mutation raises a domain
exception whose typed error is a member of the mutation's result union,
Strawberry answers with that member instead of an error. A domain error that
stays a GraphQL error (a query's, or one the result cannot hold) gets its
``extensions.code`` from ``error_code``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import strawberry
from pydantic import ValidationError as PydanticValidationError
from strawberry.types import Info
from strawberry.types.field import StrawberryField
from strawberry.utils.str_converters import to_camel_case

from inventory import errors


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
class LineShortage:
    loc: list[str] = strawberry.field(
        description='The line, in GraphQL names: ["input", "lines", "2"]'
    )
    available: int
    requested: int


@strawberry.type(description="Some lines cannot have the units they ask for; none was applied")
class Shortage:
    message: str
    errors: list[LineShortage]


@strawberry.type
class LineOverReceipt:
    loc: list[str] = strawberry.field(
        description='The line, in GraphQL names: ["input", "lines", "2"]'
    )
    open: int = strawberry.field(description="Units of the line still to be received")
    requested: int


@strawberry.type(description="Some lines receive more than is still open; none was received")
class OverReceipt:
    message: str
    errors: list[LineOverReceipt]


@strawberry.type
class LineNotAllocated:
    loc: list[str] = strawberry.field(
        description='The line, in GraphQL names: ["input", "lines", "2"]'
    )
    allocated: int = strawberry.field(description="Units allocated to the line and not shipped")
    requested: int


@strawberry.type(description="Some lines ship more than is allocated to them; none shipped")
class NotAllocated:
    message: str
    errors: list[LineNotAllocated]


@strawberry.type(description="The order's status does not allow this step")
class InvalidTransition:
    message: str
    current_status: str = strawberry.field(description="The status the order is in, as in REST")


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

PromiseError = Shortage | InsufficientStock | NotFound | Conflict | ValidationFailed
"""What a write that holds or counts stock answers with instead of its result."""

PurchaseOrderError = InvalidTransition | OverReceipt | NotFound | Conflict | ValidationFailed
"""What a purchase order write answers with instead of the order."""

SalesOrderError = (
    InvalidTransition | NotAllocated | InsufficientStock | NotFound | Conflict | ValidationFailed
)
"""What a sales order write answers with instead of the order."""

EntryError = NotFound | Conflict | ValidationFailed | PreconditionFailed
"""What a catalogue write answers with instead of its result."""

LineT = TypeVar("LineT")

PAYLOAD_ARGUMENT = "input"
"""The argument a mutation takes its data in: what a service calls its data's fields."""


class InsufficientStockHandler(
    strawberry.ExceptionHandler[errors.InsufficientStock, InsufficientStock]
):
    def handle(
        self, exception: errors.InsufficientStock, *, field: StrawberryField, info: Info
    ) -> InsufficientStock:
        return InsufficientStock(
            message=exception.detail, available=exception.available, requested=exception.requested
        )


class ShortageHandler(strawberry.ExceptionHandler[errors.Shortage, Shortage]):
    def handle(self, exception: errors.Shortage, *, field: StrawberryField, info: Info) -> Shortage:
        return Shortage(message=exception.detail, errors=_lines(exception, field, LineShortage))


class OverReceiptHandler(strawberry.ExceptionHandler[errors.OverReceipt, OverReceipt]):
    def handle(
        self, exception: errors.OverReceipt, *, field: StrawberryField, info: Info
    ) -> OverReceipt:
        return OverReceipt(
            message=exception.detail, errors=_lines(exception, field, LineOverReceipt)
        )


class NotAllocatedHandler(strawberry.ExceptionHandler[errors.NotAllocated, NotAllocated]):
    def handle(
        self, exception: errors.NotAllocated, *, field: StrawberryField, info: Info
    ) -> NotAllocated:
        return NotAllocated(
            message=exception.detail, errors=_lines(exception, field, LineNotAllocated)
        )


def _lines(
    exception: errors.LinesRefused, field: StrawberryField, line: Callable[..., LineT]
) -> list[LineT]:
    """Each refused line as its GraphQL type: the same figures, ``loc`` where the caller
    sent the line (``["input", "lines", "2"]``)."""
    arguments = {argument.python_name for argument in field.arguments}
    return [
        line(**{**e, "loc": _graphql_names(argument_loc(e["loc"], arguments))})
        for e in exception.errors
    ]


class InvalidTransitionHandler(
    strawberry.ExceptionHandler[errors.InvalidTransition, InvalidTransition]
):
    def handle(
        self, exception: errors.InvalidTransition, *, field: StrawberryField, info: Info
    ) -> InvalidTransition:
        return InvalidTransition(message=exception.detail, current_status=exception.current_status)


class NotFoundHandler(strawberry.ExceptionHandler[errors.NotFound, NotFound]):
    def handle(self, exception: errors.NotFound, *, field: StrawberryField, info: Info) -> NotFound:
        return NotFound(message=exception.detail)


class ConflictHandler(strawberry.ExceptionHandler[errors.Conflict, Conflict]):
    """Also a shortage where the result cannot say InsufficientStock (a catalogue write)."""

    def handle(self, exception: errors.Conflict, *, field: StrawberryField, info: Info) -> Conflict:
        return Conflict(message=exception.detail)


class PreconditionFailedHandler(
    strawberry.ExceptionHandler[errors.PreconditionFailed, PreconditionFailed]
):
    def handle(
        self, exception: errors.PreconditionFailed, *, field: StrawberryField, info: Info
    ) -> PreconditionFailed:
        return PreconditionFailed(message=exception.detail)


class ValidationFailedHandler(
    strawberry.ExceptionHandler[errors.ValidationFailed | PydanticValidationError, ValidationFailed]
):
    """A service's refusal, or a REST input schema's refusal of the ``input`` argument."""

    def handle(
        self,
        exception: errors.ValidationFailed | PydanticValidationError,
        *,
        field: StrawberryField,
        info: Info,
    ) -> ValidationFailed:
        if isinstance(exception, PydanticValidationError):
            found: Iterable[Mapping[str, Any]] = (
                {**e, "loc": (PAYLOAD_ARGUMENT, *e["loc"])}
                for e in exception.errors(include_input=False)
            )
            return ValidationFailed(message="The input is not valid.", errors=_field_errors(found))
        arguments = {argument.python_name for argument in field.arguments}
        return ValidationFailed(
            message=exception.detail,
            errors=_field_errors(
                {**e, "loc": argument_loc(e["loc"], arguments)} for e in exception.errors
            ),
        )


EXCEPTION_HANDLERS = (
    # Strawberry takes the first that matches and that the field's result can answer
    # with: the shortage before the conflict it is a kind of.
    InsufficientStockHandler(),
    ShortageHandler(),
    OverReceiptHandler(),
    NotAllocatedHandler(),
    InvalidTransitionHandler(),
    NotFoundHandler(),
    ConflictHandler(),
    PreconditionFailedHandler(),
    ValidationFailedHandler(),
)


ERROR_CODES: list[tuple[type[errors.DomainError], str]] = [
    # The ``extensions.code`` of a domain error that is not a member of the result.
    (errors.ValidationFailed, "BAD_USER_INPUT"),
    (errors.NotFound, "NOT_FOUND"),
    (errors.Conflict, "CONFLICT"),
    (errors.Unauthenticated, "UNAUTHENTICATED"),
    (errors.Forbidden, "FORBIDDEN"),
    (errors.TooManyRequests, "RATE_LIMITED"),
    (errors.ServiceUnavailable, "SERVICE_UNAVAILABLE"),
]


def error_code(exception: errors.DomainError) -> str:
    return next((code for kind, code in ERROR_CODES if isinstance(exception, kind)), "BAD_REQUEST")


def argument_loc(loc: Sequence[str | int], arguments: Collection[str]) -> tuple[str | int, ...]:
    """A domain location as the mutation's caller sent it: the GraphQL front names one of
    its arguments first (``("id",)``); a service names fields of the data it was given,
    which came as the ``input`` argument."""
    if loc and loc[0] in arguments:
        return tuple(loc)
    return (PAYLOAD_ARGUMENT, *loc)


def _field_errors(found: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    return [FieldError(loc=_graphql_names(e["loc"]), msg=e["msg"], type=e["type"]) for e in found]


def _graphql_names(loc: Sequence[str | int]) -> list[str]:
    """Each part as GraphQL spells it: field names camelCase, list positions as text."""
    return [to_camel_case(p) if isinstance(p, str) else str(p) for p in loc]

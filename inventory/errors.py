"""Domain exceptions: the failures a caller can act on, in the inventory's own terms.

Services raise these; each front turns them into its own answer (REST in
``inventory.problems``, GraphQL in ``graphql_schema.errors``). Nothing here
knows about HTTP or GraphQL.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A failure the caller can act on; services raise these, fronts translate them.

    ``extra`` holds the facts a front may show beside ``detail`` (for
    example ``errors`` of a ``ValidationFailed``).
    """

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class Unauthenticated(DomainError):
    """No token, or one that is invalid, expired or belongs to an inactive user."""


class Forbidden(DomainError):
    """A valid token whose role is too low."""


class TooManyRequests(DomainError):
    """The caller went over a rate limit; ``retry_after`` seconds until it may try again."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NotFound(DomainError):
    """The entry asked for does not exist."""


class Conflict(DomainError):
    """The write clashes with what is stored (a duplicate, a reference still in use)."""


class InsufficientStock(Conflict):
    """A movement would take a stock level below zero."""

    def __init__(self, *, product_id: int, warehouse_id: int, available: int, requested: int):
        super().__init__(
            f"only {available} of product {product_id} on hand in warehouse {warehouse_id}; "
            f"{requested} requested",
            available=available,
            requested=requested,
        )
        self.available = available
        self.requested = requested


class LinesRefused(Conflict):
    """Some lines of a write cannot be done as asked; it was applied to none.

    Each of ``errors`` names its line with ``loc`` in the data the service was
    given (``("lines", 2)``), beside the figures that refused it; each front
    puts ``loc`` where its callers sent the line, as for ``ValidationFailed``.
    """

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail, errors=errors)
        self.errors = errors


class Shortage(LinesRefused):
    """Some lines ask for more units than are available: each error is
    ``{loc, available, requested}``."""


def shortage(loc: tuple[str | int, ...], available: int, requested: int) -> dict[str, Any]:
    return {"loc": list(loc), "available": available, "requested": requested}


class OverReceipt(LinesRefused):
    """Some lines receive more than is still open on the order: each error is
    ``{loc, open, requested}``."""


def over_receipt(loc: tuple[str | int, ...], open_: int, requested: int) -> dict[str, Any]:
    return {"loc": list(loc), "open": open_, "requested": requested}


class NotAllocated(LinesRefused):
    """Some lines ship more than is allocated to them and not yet shipped: each error is
    ``{loc, allocated, requested}``, ``allocated`` being what may still ship."""


def not_allocated(loc: tuple[str | int, ...], allocated: int, requested: int) -> dict[str, Any]:
    return {"loc": list(loc), "allocated": allocated, "requested": requested}


class InvalidTransition(Conflict):
    """The entry's status does not allow the step asked for; ``current_status`` says where
    it stands."""

    def __init__(self, detail: str, current_status: str) -> None:
        super().__init__(detail, current_status=current_status)
        self.current_status = current_status


class MalformedBody(DomainError):
    """What was sent cannot be read at all (a broken multipart body)."""


class PayloadTooLarge(DomainError):
    """What was sent is larger than the limit."""


class UnsupportedMediaType(DomainError):
    """What was sent is not in a format the operation reads (a file that is not UTF-8)."""


class PreconditionFailed(DomainError):
    """The entry is no longer at the version the caller expected."""


class ServiceUnavailable(DomainError):
    """A part the operation needs is away; worth retrying shortly."""


class Overloaded(ServiceUnavailable):
    """The process is doing as much of this work as it may at once (password hashes, or
    requests as a whole); worth retrying in a moment."""


class BrokerUnavailable(ServiceUnavailable):
    """The job queue did not take the job; nothing was recorded."""


class ValidationFailed(DomainError):
    """Input that is well-formed but wrong, e.g. a reference to a missing category.

    Each of ``errors`` is ``{loc, msg, type}``. A service names the fields of
    the data it was given (``("category_id",)``); each front puts them where
    its callers sent them (REST under ``body``, GraphQL under ``input``).
    A front that refuses a part of its own request names that part first.
    """

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail, errors=errors)
        self.errors = errors


def field_error(loc: tuple[str | int, ...], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": type_}

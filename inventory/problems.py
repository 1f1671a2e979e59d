"""REST's answer to every failure: problem+json (RFC 9457), from one table of error kinds.

``PROBLEMS`` says, for each exception class, the status, the problem type
and the headers of its answer; the exception handlers answer from it, and
``problem_responses`` documents routes from it, so the OpenAPI document and
the answers cannot drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from inventory.errors import (
    BrokerUnavailable,
    Conflict,
    DomainError,
    Forbidden,
    InsufficientStock,
    InvalidTransition,
    LinesRefused,
    MalformedBody,
    NotAllocated,
    NotFound,
    Overloaded,
    OverReceipt,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceUnavailable,
    Shortage,
    TooManyRequests,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
    field_error,
)
from inventory.idempotency import StoredResponse

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
REQUEST_PARTS = frozenset({"body", "query", "path", "header", "cookie"})
"""Where in a request a REST location points; any other first part names a body field."""


@dataclass(frozen=True)
class ProblemKind:
    """How REST answers one kind of failure."""

    status: int
    code: str | None
    """The problem type is ``urn:inventory:problem:<code>``; ``about:blank`` without one."""
    headers: Callable[[Exception], Mapping[str, str]] | None = None


def _retry_after(seconds: int) -> Callable[[Exception], Mapping[str, str]]:
    return lambda _: {"Retry-After": str(seconds)}


def _rate_limited(exc: Exception) -> Mapping[str, str]:
    assert isinstance(exc, TooManyRequests)
    return {"Retry-After": str(exc.retry_after)}


PROBLEMS: dict[type[Exception], ProblemKind] = {
    # The most specific class of an error that is listed here decides its answer.
    Unauthenticated: ProblemKind(401, "unauthenticated", lambda _: {"WWW-Authenticate": "Bearer"}),
    Forbidden: ProblemKind(403, "forbidden"),
    TooManyRequests: ProblemKind(429, "too-many-requests", _rate_limited),
    NotFound: ProblemKind(404, "not-found"),
    Conflict: ProblemKind(409, "conflict"),
    InsufficientStock: ProblemKind(409, "insufficient-stock"),
    LinesRefused: ProblemKind(409, "conflict"),
    Shortage: ProblemKind(409, "insufficient-stock"),
    OverReceipt: ProblemKind(409, "over-receipt"),
    NotAllocated: ProblemKind(409, "not-allocated"),
    InvalidTransition: ProblemKind(409, "invalid-transition"),
    MalformedBody: ProblemKind(400, "malformed-body"),
    PayloadTooLarge: ProblemKind(413, "payload-too-large"),
    UnsupportedMediaType: ProblemKind(415, "unsupported-media-type"),
    PreconditionFailed: ProblemKind(412, "precondition-failed"),
    ServiceUnavailable: ProblemKind(503, "service-unavailable", _retry_after(5)),
    BrokerUnavailable: ProblemKind(503, "broker-unavailable", _retry_after(5)),
    Overloaded: ProblemKind(503, "overloaded", _retry_after(1)),
    ValidationFailed: ProblemKind(422, "validation-failed"),
    DomainError: ProblemKind(400, "bad-request"),
    # What FastAPI and the database raise, and the last resort.
    RequestValidationError: ProblemKind(422, "validation-failed"),
    # Locked (SQLite), out of connections, or unreachable: worth a retry, not a 500.
    OperationalError: ProblemKind(503, "database-unavailable", _retry_after(1)),
    PoolTimeout: ProblemKind(503, "database-unavailable", _retry_after(1)),
    Exception: ProblemKind(500, None),
}


def kind_of(error: type[Exception]) -> ProblemKind:
    """The entry of ``PROBLEMS`` for ``error``: its own, or its nearest listed base class."""
    return next(PROBLEMS[cls] for cls in error.__mro__ if cls in PROBLEMS)


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The problem+json response every error path of the API goes through."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": f"urn:inventory:problem:{code}" if code else "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def problem_response(request: Request, exc: DomainError) -> JSONResponse:
    """The problem+json answer to a domain error."""
    kind = kind_of(type(exc))
    extra = dict(exc.extra)
    if isinstance(exc, ValidationFailed | LinesRefused):
        extra["errors"] = [{**e, "loc": request_loc(e["loc"])} for e in exc.errors]
    headers = kind.headers(exc) if kind.headers else None
    return problem(request, kind.status, exc.detail, code=kind.code, headers=headers, **extra)


def kept_refusal(request: Request, exc: DomainError) -> StoredResponse | None:
    """The answer an ``Idempotency-Key`` keeps for a refused write: the problem+json of a 4xx
    from the business rules; None for a rate limit or an unavailable service (retry later,
    the key stays free)."""
    response = problem_response(request, exc)
    if response.status_code >= 500 or response.status_code == 429:
        return None
    return StoredResponse(response.status_code, bytes(response.body).decode())


def request_loc(loc: Sequence[str | int]) -> list[str | int]:
    """A domain location where REST's callers sent it: a service names the fields of the
    data it was given, which came in the body; a REST front names the part itself."""
    if loc and loc[0] in REQUEST_PARTS:
        return list(loc)
    return ["body", *loc]


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(request, exc)


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only loc/msg/type: echoing "input" back could leak a password field.
    errors = [field_error(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors()]
    return _invalid_request(request, errors)


def _invalid_request(request: Request, errors: list[dict[str, Any]]) -> JSONResponse:
    kind = PROBLEMS[RequestValidationError]
    return problem(request, kind.status, "The request is not valid.", code=kind.code, errors=errors)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # FastAPI could not read a JSON body (bytes that are not UTF-8, nesting too deep):
        # the same 422 as a body that does not parse.
        return _invalid_request(request, [_unreadable_body(exc.__cause__)])
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(request, exc.status_code, detail, headers=exc.headers)


def _unreadable_body(cause: ValueError | RecursionError) -> dict[str, Any]:
    if isinstance(cause, UnicodeDecodeError):
        return field_error(("body", cause.start), "JSON decode error", "json_invalid")
    return field_error(("body",), "JSON decode error", "json_invalid")


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    logger.error(
        "unhandled error on %s %s (request %s)",
        request.method,
        request.url.path,
        getattr(request.state, "request_id", None),
        exc_info=exc,
    )
    response = problem(request, PROBLEMS[Exception].status, "An unexpected error occurred.")
    # This handler runs outside the request-id middleware, so it sets the header itself.
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning(
        "database unavailable on %s %s (request %s): %s",
        request.method,
        request.url.path,
        getattr(request.state, "request_id", None),
        type(getattr(exc, "orig", exc)).__name__,
    )
    kind = kind_of(type(exc))
    return problem(
        request,
        kind.status,
        "The database is busy or unavailable; retry shortly.",
        code=kind.code,
        headers=kind.headers(exc) if kind.headers else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unhandled)


PROBLEM_CONTENT: dict[str, Any] = {
    PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
}
_DOCUMENTED_STATUSES = frozenset(kind.status for kind in PROBLEMS.values())


def problem_responses(*errors: int | type[Exception]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the problem+json errors of a route, each given as
    the exception class or as the status ``PROBLEMS`` gives it."""
    statuses = [error if isinstance(error, int) else kind_of(error).status for error in errors]
    unknown = [status for status in statuses if status not in _DOCUMENTED_STATUSES]
    if unknown:
        raise ValueError(f"no error kind answers with {unknown}: add it to PROBLEMS first")
    return {
        status: {"description": HTTPStatus(status).phrase, "content": PROBLEM_CONTENT}
        for status in statuses
    }

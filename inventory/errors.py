"""Domain exceptions, and the one place that turns every failure into problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class DomainError(Exception):
    """A failure the caller can act on; services raise these, fronts translate them."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad-request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def headers(self) -> dict[str, str] | None:
        return None


class Unauthenticated(DomainError):
    """No token, or one that is invalid, expired or belongs to an inactive user."""

    status = 401
    code = "unauthenticated"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(DomainError):
    """A valid token whose role is too low."""

    status = 403
    code = "forbidden"


class TooManyRequests(DomainError):
    status = 429
    code = "too-many-requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class NotFound(DomainError):
    status = 404
    code = "not-found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class InsufficientStock(Conflict):
    """A movement would take a stock level below zero."""

    code = "insufficient-stock"

    def __init__(self, *, product_id: int, warehouse_id: int, available: int, requested: int):
        super().__init__(
            f"only {available} of product {product_id} on hand in warehouse {warehouse_id}; "
            f"{requested} requested",
            available=available,
            requested=requested,
        )
        self.available = available
        self.requested = requested


class MalformedBody(DomainError):
    status = 400
    code = "malformed-body"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload-too-large"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported-media-type"


class PreconditionFailed(DomainError):
    status = 412
    code = "precondition-failed"


class ServiceUnavailable(DomainError):
    """A part the request needs (the job broker) is away; worth retrying shortly."""

    status = 503
    code = "service-unavailable"

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class ValidationFailed(DomainError):
    """Input that is well-formed but wrong, e.g. a reference to a missing category."""

    status = 422
    code = "validation-failed"

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail, errors=errors)
        self.errors = errors


def field_error(loc: tuple[str | int, ...], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": type_}


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
    return problem(request, exc.status, exc.detail, code=exc.code, headers=exc.headers, **exc.extra)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(request, exc)


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only loc/msg/type: echoing "input" back could leak a password field.
    errors = [field_error(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors()]
    return problem(
        request, 422, "The request is not valid.", code="validation-failed", errors=errors
    )


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(request, exc.status_code, detail, headers=exc.headers)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    logger.error(
        "unhandled error on %s %s (request %s)",
        request.method,
        request.url.path,
        getattr(request.state, "request_id", None),
        exc_info=exc,
    )
    response = problem(request, 500, "An unexpected error occurred.")
    # This handler runs outside the request-id middleware, so it sets the header itself.
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Locked (SQLite), out of connections, or unreachable: worth a retry, not a 500.
    logger.warning(
        "database unavailable on %s %s (request %s): %s",
        request.method,
        request.url.path,
        getattr(request.state, "request_id", None),
        type(getattr(exc, "orig", exc)).__name__,
    )
    return problem(
        request,
        503,
        "The database is busy or unavailable; retry shortly.",
        code="database-unavailable",
        headers={"Retry-After": "1"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unhandled)


PROBLEM_SCHEMA: dict[str, Any] = {
    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the problem+json errors of a route."""
    return {
        status: {"description": HTTPStatus(status).phrase, **PROBLEM_SCHEMA} for status in statuses
    }

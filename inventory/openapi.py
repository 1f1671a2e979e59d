"""The OpenAPI document's error answers, from the same table that makes them.

FastAPI documents what a route declares; this adds what it cannot know: the
Problem schema every error response refers to, the bearer scheme, and the
errors every operation, every signed-in one and every write may meet
(``inventory.problems.PROBLEMS`` gives each its status). FastAPI's own 422
becomes the problem+json it is answered with.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError

from inventory.deps import RoleRequirement, bearer_token, signed_in
from inventory.errors import Forbidden, PayloadTooLarge, TooManyRequests, Unauthenticated
from inventory.problems import problem_responses

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str | None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="For 422: each invalid field as {loc, msg, type}"
    )


def complete_openapi(app: FastAPI, api_prefix: str) -> None:
    """Have ``app.openapi()`` document every error answer; ``api_prefix`` holds the
    routes that use the database, so may find it away (503)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            )
            document_errors(app, schema, api_prefix)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_errors(app: FastAPI, schema: dict[str, Any], api_prefix: str) -> None:
    # Signing in is one plain dependency (see deps.signed_in), so FastAPI does not
    # see the bearer scheme: declare it, and name it on every signed-in operation.
    scheme = bearer_token.scheme_name
    schema["components"].setdefault("securitySchemes", {})[scheme] = bearer_token.model.model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        path = str(context.path)
        needs_sign_in = _needs_sign_in(context.dependant)
        for method in context.methods or ():
            operation = schema["paths"].get(path, {}).get(method.lower())
            if operation is None:
                continue
            errors: list[type[Exception]] = [Exception]
            if needs_sign_in:
                operation.setdefault("security", [{scheme: []}])
                errors += [Unauthenticated, Forbidden]
                if method in WRITE_METHODS:
                    errors.append(TooManyRequests)
            if method in WRITE_METHODS:
                errors.append(PayloadTooLarge)
            if path.startswith(api_prefix):
                errors.append(OperationalError)
            responses = operation["responses"]
            if "422" in responses:
                # A parameter or body FastAPI refuses: answered as problem+json too.
                (refused,) = problem_responses(RequestValidationError).values()
                responses["422"] = refused
            for status, response in problem_responses(*errors).items():
                responses.setdefault(str(status), response)
    _drop_unused_schemas(schema)


def _needs_sign_in(dependant: Dependant) -> bool:
    return any(
        dep.call is signed_in or isinstance(dep.call, RoleRequirement) or _needs_sign_in(dep)
        for dep in dependant.dependencies
    )


def _drop_unused_schemas(schema: dict[str, Any]) -> None:
    """FastAPI's validation error schemas, once no 422 refers to them."""
    schemas = schema["components"]["schemas"]
    for name in FASTAPI_VALIDATION_SCHEMAS:
        if name not in schemas:
            continue
        ref = f"#/components/schemas/{name}"
        others = {key: value for key, value in schemas.items() if key != name}
        if ref not in repr(schema["paths"]) and ref not in repr(others):
            del schemas[name]

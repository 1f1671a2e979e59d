"""Error shaping: domain errors get a code, unexpected ones are masked outside development.

Strawberry's own MaskErrors would also hide the limiters' messages and drop
the request id; this keeps both.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from graphql_schema.context import Context
from inventory import errors

logger = logging.getLogger(__name__)

_CODES: list[tuple[type[errors.DomainError], str]] = [
    (errors.ValidationFailed, "BAD_USER_INPUT"),
    (errors.NotFound, "NOT_FOUND"),
    (errors.Conflict, "CONFLICT"),
    (errors.Unauthenticated, "UNAUTHENTICATED"),
    (errors.Forbidden, "FORBIDDEN"),
    (errors.TooManyRequests, "RATE_LIMITED"),
]
_SUGGESTION = re.compile(r" Did you mean .*\?$")


def shaped_errors(*, development: bool) -> type[SchemaExtension]:
    class ErrorShaping(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            yield
            result = self.execution_context.result
            if result is None or not result.errors:
                return
            result.errors = [self._shape(error) for error in result.errors]

        def on_stream_result(self, result: Any) -> Iterator[None]:
            # Subscription events (and errors raised while streaming) never pass
            # through on_operation's result: shape them here too.
            if getattr(result, "errors", None):
                result.errors = [self._shape(error) for error in result.errors]
            yield

        def _shape(self, error: GraphQLError) -> GraphQLError:
            original = error.original_error
            if isinstance(original, errors.DomainError):
                code = next((c for kind, c in _CODES if isinstance(original, kind)), "BAD_REQUEST")
                return self._copy(error, error.message, {**(error.extensions or {}), "code": code})
            if original is None or isinstance(original, GraphQLError):
                # Our own errors (auth codes) and validation (limits, unknown fields).
                if not development:
                    return self._copy(
                        error, _SUGGESTION.sub("", error.message), error.extensions or {}
                    )
                return error
            request_id = self._request_id()
            logger.error("unexpected GraphQL error (request %s)", request_id, exc_info=original)
            if development:
                return error
            return self._copy(
                error,
                "An unexpected error occurred.",
                {"code": "INTERNAL_SERVER_ERROR", "request_id": request_id},
            )

        def _request_id(self) -> str | None:
            request = getattr(self.execution_context.context, "request", None)
            return getattr(getattr(request, "state", None), "request_id", None)

        @staticmethod
        def _copy(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
            return GraphQLError(
                message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                original_error=None,
                extensions=extensions,
            )

    return ErrorShaping


class Transports(SchemaExtension):
    """Each operation on its transport, and a writer's transaction only for a mutation.

    Queries and mutations go over HTTP, where they get the request's
    transaction; subscriptions need the WebSocket.
    """

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        operation = execution.operation_type
        if not isinstance(context, Context):
            raise TypeError(f"unexpected GraphQL context {type(context).__name__}")
        if context.transaction is None:
            if operation is not OperationType.SUBSCRIPTION:
                raise _bad_request(
                    "Send queries and mutations over HTTP; the WebSocket carries subscriptions."
                )
        elif operation is OperationType.SUBSCRIPTION:
            raise _bad_request("Subscriptions need a WebSocket (graphql-transport-ws).")
        elif operation is OperationType.MUTATION:
            context.transaction.write = True
        yield


def _bad_request(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_REQUEST"})

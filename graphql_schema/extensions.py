"""Error shaping: domain errors get a code, unexpected ones are masked outside development.

Strawberry's own MaskErrors would also hide the limiters' messages and drop
the request id; this keeps both.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from inventory import errors

logger = logging.getLogger(__name__)

_CODES: list[tuple[type[errors.DomainError], str]] = [
    (errors.ValidationFailed, "BAD_USER_INPUT"),
    (errors.NotFound, "NOT_FOUND"),
    (errors.Conflict, "CONFLICT"),
    (errors.Unauthenticated, "UNAUTHENTICATED"),
    (errors.Forbidden, "FORBIDDEN"),
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


class WebSocketCarriesSubscriptions(SchemaExtension):
    """Queries and mutations go over HTTP, where they get the request's transaction."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if (
            getattr(context.context, "is_websocket", False)
            and context.operation_type is not OperationType.SUBSCRIPTION
        ):
            raise GraphQLError(
                "Send queries and mutations over HTTP; the WebSocket carries subscriptions.",
                extensions={"code": "BAD_REQUEST"},
            )
        yield

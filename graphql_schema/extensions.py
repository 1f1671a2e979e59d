"""Schema extensions: error shaping, the cost limit, and each operation on its transport.

Strawberry's own MaskErrors would also hide the limiters' messages and drop
the request id; the error shaping here keeps both.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    get_operation_ast,
)
from strawberry.extensions import SchemaExtension, ValidationCache
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from graphql_schema import cost
from graphql_schema.context import Context
from graphql_schema.errors import error_code
from inventory import errors

logger = logging.getLogger(__name__)

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
                extensions = {**(error.extensions or {}), "code": error_code(original)}
                return self._copy(error, error.message, extensions)
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


class CostLimit(SchemaExtension):
    """Refuses an operation whose estimated cost is over the budget, before anything runs.

    The estimate is ``graphql_schema.cost``'s. It is made as execution starts,
    once the document is valid and with the request's variables, before any
    resolver (and the write charge) runs. Every answer reports it as
    ``extensions.cost``: 0 when the document never got that far (a syntax or
    validation error).

    Before validation, a document whose fragments spread out to more than
    ``max_selections`` is refused (QUERY_TOO_COMPLEX): the depth and alias
    limits walk every spread-out selection, so such a document would hold the
    event loop in validation. It must come before ``CachedValidation`` in the
    schema's extensions.
    """

    def __init__(self, *, max_cost: int, max_selections: int) -> None:
        super().__init__()
        self.max_cost = max_cost
        self.max_selections = max_selections
        self.cost = 0

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        if document is not None and (size := cost.expanded_size(document)) > self.max_selections:
            # Set, not raised: the validation then neither runs nor is cached, and the
            # refusal takes the path of a validation error on every transport.
            execution.pre_execution_errors = [
                GraphQLError(
                    f"The document's fragments spread out to {size} selections, over the "
                    f"limit of {self.max_selections}.",
                    extensions={"code": "QUERY_TOO_COMPLEX"},
                )
            ]
        yield

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.graphql_document is not None:
            self.cost = cost.estimate(
                execution.schema._schema,
                execution.graphql_document,
                execution.operation_name,
                execution.variables,
            )
        if self.cost > self.max_cost:
            # Raised before any resolver runs, so the error shaping never sees it: coded here.
            raise GraphQLError(
                f"The operation's estimated cost, {self.cost}, is over the limit of "
                f"{self.max_cost}; ask for smaller pages or fewer nested lists.",
                extensions={
                    "code": "QUERY_TOO_COSTLY",
                    "cost": self.cost,
                    "maxCost": self.max_cost,
                },
            )
        yield

    def get_results(self) -> dict[str, Any]:
        return {"cost": self.cost}


class CachedValidation(ValidationCache):
    """Strawberry's validation cache, which leaves a document an earlier extension refused."""

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors:
            yield
            return
        yield from super().on_validate()


class Transports(SchemaExtension):
    """Each operation on its transport; a mutation gets a writer's transaction and is charged.

    Queries and mutations go over HTTP, where they get the request's
    transaction; subscriptions need the WebSocket. A mutation request is
    charged against its caller's write rate here, once, for as many writes as
    it has top-level fields (the rule is ``WriteThrottle``'s).
    """

    async def on_execute(self) -> AsyncIterator[None]:
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
            await _charge_writes(context, execution)
        yield


async def _charge_writes(context: Context, execution: ExecutionContext) -> None:
    """Charge a mutation request's writes to its caller; none without a valid token."""
    if context.write_throttle is None or (user := await context.user()) is None:
        return
    writes = 1
    if execution.graphql_document is not None:
        operation = get_operation_ast(execution.graphql_document, execution.operation_name)
        if operation is not None:
            writes = max(1, _top_level_fields(operation.selection_set, execution.graphql_document))
    try:
        await context.write_throttle.charge(user.id, writes)
    except errors.TooManyRequests as exc:
        # Raised before any resolver runs, so the error shaping never sees it: coded here.
        raise GraphQLError(exc.detail, extensions={"code": error_code(exc)}) from None


def _top_level_fields(selections: SelectionSetNode, document: DocumentNode) -> int:
    """The fields of a selection set, counting those its fragments bring in."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    count = 0
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            count += 1
        elif isinstance(selection, InlineFragmentNode):
            count += _top_level_fields(selection.selection_set, document)
        elif isinstance(selection, FragmentSpreadNode) and (
            fragment := fragments.get(selection.name.value)
        ):
            count += _top_level_fields(fragment.selection_set, document)
    return count


def _bad_request(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_REQUEST"})

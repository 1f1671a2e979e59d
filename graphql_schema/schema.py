"""The schema: Query, Mutation and Subscription roots, limits (the cost limit's budget is
``INVENTORY_GRAPHQL_MAX_COST``), caches, the mapping of domain errors, and the FastAPI
router."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    max_aliases,
    query_depth_limiter,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from graphql_schema import (
    mutations,
    purchase_orders,
    queries,
    reservations,
    sales_orders,
    valuation,
)
from graphql_schema.context import get_context
from graphql_schema.counts import CountMutation, CountQuery
from graphql_schema.errors import EXCEPTION_HANDLERS
from graphql_schema.extensions import CachedValidation, CostLimit, Transports, shaped_errors
from graphql_schema.ide import OfflineGraphQLRouter
from graphql_schema.subscriptions import Subscription
from inventory.config import Environment, Settings

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000
MAX_SELECTIONS = 5000
"""Fields and fragments of a document once its fragment spreads are spread out."""
MAX_SUBSCRIPTIONS = 10
"""Per WebSocket connection."""

# Built once: the validation cache keys on the rule classes, so rules made
# per request would never hit it.
LIMIT_RULES = (
    query_depth_limiter.create_validator(MAX_DEPTH, should_ignore=None),
    max_aliases.create_validator(MAX_ALIASES),
)


class InventorySchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log nothing here: expected errors are answers, not incidents.

        The error-shaping extension logs the unexpected ones, once each, with
        the request id.
        """


# Each family of operations keeps its own root fields in its own module.
Query = merge_types(
    "Query",
    (
        queries.Query,
        CountQuery,
        reservations.ReservationQuery,
        valuation.ValuationQuery,
        purchase_orders.PurchaseOrderQuery,
        sales_orders.SalesOrderQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        mutations.Mutation,
        CountMutation,
        reservations.ReservationMutation,
        purchase_orders.PurchaseOrderMutation,
        sales_orders.SalesOrderMutation,
    ),
)


def build_schema(settings: Settings) -> strawberry.Schema:
    development = settings.env is Environment.development
    introspection = settings.graphql_introspection
    if introspection is None:
        introspection = settings.env is not Environment.production
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        # Classes and factories, never shared instances: nothing leaks between requests.
        ParserCache,
        # Before the validation (which it may spare) and Transports (a refused
        # operation is not charged as writes).
        lambda: CostLimit(max_cost=settings.graphql_max_cost, max_selections=MAX_SELECTIONS),
        CachedValidation,
        lambda: AddValidationRules(list(LIMIT_RULES)),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        shaped_errors(development=development),
        Transports,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return InventorySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        exception_handlers=EXCEPTION_HANDLERS,
    )


def graphql_router(settings: Settings) -> GraphQLRouter[object, None]:
    return OfflineGraphQLRouter(
        build_schema(settings),
        context_getter=get_context,
        # GraphiQL is part of the docs: off with them (its scripts are not served then).
        graphql_ide="graphiql" if settings.docs_enabled else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        max_subscriptions_per_connection=MAX_SUBSCRIPTIONS,
    )

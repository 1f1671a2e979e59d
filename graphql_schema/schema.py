"""The schema: Query, Mutation and Subscription roots, limits, caches, and the FastAPI router."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from graphql_schema.context import get_context
from graphql_schema.extensions import WebSocketCarriesSubscriptions, shaped_errors
from graphql_schema.ide import OfflineGraphQLRouter
from graphql_schema.mutations import Mutation
from graphql_schema.queries import Query
from graphql_schema.subscriptions import Subscription
from inventory.config import Environment, Settings

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000
MAX_SUBSCRIPTIONS = 10
"""Per WebSocket connection."""


def build_schema(settings: Settings) -> strawberry.Schema:
    development = settings.env is Environment.development
    introspection = settings.graphql_introspection
    if introspection is None:
        introspection = settings.env is not Environment.production
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        # Classes and factories, never shared instances: nothing leaks between requests.
        ParserCache,
        ValidationCache,
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        shaped_errors(development=development),
        WebSocketCarriesSubscriptions,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions
    )


def graphql_router(settings: Settings) -> GraphQLRouter[object, None]:
    return OfflineGraphQLRouter(
        build_schema(settings),
        context_getter=get_context,
        graphql_ide="graphiql",
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        max_subscriptions_per_connection=MAX_SUBSCRIPTIONS,
    )

"""The schema: Query and Mutation roots, limits, caches, and the FastAPI router."""

from __future__ import annotations

import strawberry
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.fastapi import GraphQLRouter

from graphql_schema.context import get_context
from graphql_schema.mutations import Mutation
from graphql_schema.queries import Query

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        # Classes and factories, never shared instances: nothing leaks between requests.
        ParserCache,
        ValidationCache,
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
    ],
)


def graphql_router() -> GraphQLRouter[object, None]:
    return GraphQLRouter(schema, context_getter=get_context, graphql_ide="graphiql")

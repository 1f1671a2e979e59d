"""Subscription root: live stock changes from the change feed, filtered per subscriber.

The filter and the re-check of the caller are the other live feeds' own
(``inventory.stock.follower``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from graphql import GraphQLError
from strawberry.permission import BasePermission

from graphql_schema.context import Context, ContextInfo
from graphql_schema.permissions import ViewerRequired
from inventory.changefeed import SubscriberTooSlow
from inventory.events import StockChanged
from inventory.stock.follower import Wanted, live_changes


class StockWatchers(ViewerRequired):
    """Who may subscribe to stock changes: checked on subscribing, and again as it goes on."""


WATCHERS: list[type[BasePermission]] = [StockWatchers]


@strawberry.type
class StockChange:
    """A level after one ledger entry changed it (the payload of the REST WebSocket)."""

    product_id: strawberry.ID
    warehouse_id: strawberry.ID
    quantity: int
    reserved: int | None = strawberry.field(
        description="Units held by live reservations right after the change"
    )
    available: int | None = strawberry.field(description="quantity - reserved")
    movement_id: strawberry.ID

    @classmethod
    def of(cls, change: StockChanged) -> StockChange:
        return cls(
            product_id=strawberry.ID(str(change.product_id)),
            warehouse_id=strawberry.ID(str(change.warehouse_id)),
            quantity=change.quantity,
            reserved=change.reserved,
            available=change.available,
            movement_id=strawberry.ID(str(change.movement_id)),
        )


def _id_filter(value: strawberry.ID | None, name: str) -> int | None:
    if value is None:
        return None
    if not str(value).isdigit():
        raise GraphQLError(f"{name} must be a numeric id", extensions={"code": "BAD_USER_INPUT"})
    return int(value)


@strawberry.type
class Subscription:
    @strawberry.subscription(permission_classes=WATCHERS)
    async def stock_changed(
        self,
        info: ContextInfo,
        product_id: strawberry.ID | None = None,
        warehouse_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[StockChange, None]:
        """Every committed change of a stock level, optionally for one product or warehouse.

        The caller is checked again every minute and when the token expires:
        a deactivated user, a lowered role or an expired token ends the stream
        with UNAUTHENTICATED or FORBIDDEN. Each subscription holds one of the
        caller's live-stream slots (``INVENTORY_MAX_STREAMS_PER_USER``, shared
        with the WebSocket and the event stream); past that it is refused with
        RATE_LIMITED and the connection stays open.
        """
        wanted = Wanted(
            _id_filter(product_id, "productId"), _id_filter(warehouse_id, "warehouseId")
        )
        context: Context = info.context
        caller = await context.caller(StockWatchers.role)
        async with context.live_slot(caller), context.feed.subscribe() as changes:
            try:
                watch = context.remembered.watch_user(caller.user_id)
                async for change in live_changes(changes, wanted, caller, context.recheck, watch):
                    yield StockChange.of(change)
            except SubscriberTooSlow as exc:
                raise GraphQLError(str(exc), extensions={"code": "SUBSCRIBER_TOO_SLOW"}) from None

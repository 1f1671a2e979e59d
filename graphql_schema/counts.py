"""Stock counts over GraphQL: their types, the `count` and `counts` queries and the four
count mutations, each a thin call of the service REST calls."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.permission import BasePermission

from graphql_schema import types
from graphql_schema.context import ContextInfo
from graphql_schema.errors import StockError
from graphql_schema.inputs import UNSET, as_filter, parse_id, rest_id, sent
from graphql_schema.permissions import ClerkRequired, ManagerRequired, ViewerRequired
from graphql_schema.queries import After, First, page_size
from inventory import models
from inventory.counts import filters
from inventory.counts import service as counts
from inventory.counts.schemas import CountLineRecord, CountOpen
from inventory.errors import NotFound


@strawberry.enum(description="Where a count stands")
class CountStatus(Enum):
    OPEN = "open"
    FINISHED = "finished"
    CANCELLED = "cancelled"


@strawberry.type
class CountLine:
    product_id: strawberry.ID
    expected: int = strawberry.field(
        description="The ledger's balance at countedAt (at the count's start until counted)"
    )
    counted: int | None
    counted_at: datetime | None
    difference: int | None = strawberry.field(description="counted - expected; null until counted")

    @strawberry.field
    async def product(self, info: ContextInfo) -> types.Product | None:
        row = await info.context.loaders.product.load(int(self.product_id))
        return types.Product.of(row) if row else None

    @classmethod
    def of(cls, row: models.StockCountLine) -> CountLine:
        return cls(
            product_id=strawberry.ID(str(row.product_id)),
            expected=row.expected,
            counted=row.counted,
            counted_at=row.counted_at,
            difference=row.difference,
        )


@strawberry.type(description="A stocktake of one warehouse")
class Count:
    id: strawberry.ID
    status: CountStatus
    warehouse_id: strawberry.ID
    started_at: datetime
    finished_at: datetime | None = strawberry.field(description="When it was finished or cancelled")
    user_id: strawberry.ID | None = strawberry.field(description="Who opened it")
    lines: list[CountLine]

    @classmethod
    def of(cls, row: models.StockCount) -> Count:
        return cls(
            id=strawberry.ID(str(row.id)),
            status=CountStatus(row.status.value),
            warehouse_id=strawberry.ID(str(row.warehouse_id)),
            started_at=row.started_at,
            finished_at=row.finished_at,
            user_id=None if row.user_id is None else strawberry.ID(str(row.user_id)),
            lines=[CountLine.of(line) for line in row.lines],
        )


@strawberry.type(description="A count just finished, with the adjustments it recorded")
class FinishedCount(Count):
    movement_ids: list[strawberry.ID] = strawberry.field(
        description="One adjustment per line that differed from the ledger"
    )

    @classmethod
    def finished(cls, result: counts.FinishedCount) -> FinishedCount:
        count = Count.of(result.count)
        return cls(
            **{name: getattr(count, name) for name in vars(count)},
            movement_ids=[strawberry.ID(str(i)) for i in result.movement_ids],
        )


@strawberry.input
class CountFilter:
    status: CountStatus | None = None
    warehouse_id: strawberry.ID | None = None


@strawberry.input(description="Give productIds or categoryId, or neither (every stocked product)")
class OpenCountInput:
    warehouse_id: strawberry.ID
    product_ids: list[strawberry.ID] | None = UNSET
    category_id: strawberry.ID | None = UNSET


@strawberry.input
class RecordCountInput:
    counted: int = strawberry.field(description="Units found on the shelf")


CountResult = Annotated[Count | StockError, strawberry.union("CountResult")]
CountLineResult = Annotated[CountLine | StockError, strawberry.union("CountLineResult")]
FinishCountResult = Annotated[FinishedCount | StockError, strawberry.union("FinishCountResult")]

VIEWER: list[type[BasePermission]] = [ViewerRequired]
CLERK: list[type[BasePermission]] = [ClerkRequired]
MANAGER: list[type[BasePermission]] = [ManagerRequired]


@strawberry.type
class CountQuery:
    @strawberry.field(permission_classes=VIEWER, description="The count; null if there is none")
    async def count(self, info: ContextInfo, id: strawberry.ID) -> Count | None:
        count_id = parse_id(id, ("id",))
        async with info.context.session() as session:
            try:
                return Count.of(await counts.get_count(session, count_id))
            except NotFound:
                return None

    @strawberry.field(permission_classes=VIEWER, description="Stock counts, newest first")
    async def counts(
        self,
        info: ContextInfo,
        filter: CountFilter | None = None,
        first: First = None,
        after: After = None,
    ) -> types.Connection[Count]:
        flt = as_filter(filters.CountFilter, filter)
        async with info.context.session() as session:
            rows, next_cursor = await counts.list_counts(
                session, flt, limit=page_size(first), cursor=after
            )
        return types.Connection.of(rows, next_cursor, counts.COUNT_ORDER, Count.of)


@strawberry.type
class CountMutation:
    @strawberry.mutation(permission_classes=CLERK)
    async def open_count(self, info: ContextInfo, input: OpenCountInput) -> CountResult:
        user = await info.context.signed_in()
        body = sent(input)
        if isinstance(body.get("product_ids"), list):
            body["product_ids"] = [rest_id(i) for i in body["product_ids"]]
        data = CountOpen.model_validate(body)
        async with info.context.write_session() as session:
            return Count.of(await counts.open_count(session, user.id, data))

    @strawberry.mutation(
        permission_classes=CLERK,
        description="Record what was found of one product (again, while the count is open)",
    )
    async def record_count(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        product_id: strawberry.ID,
        input: RecordCountInput,
    ) -> CountLineResult:
        count_id = parse_id(id, ("id",))
        product = parse_id(product_id, ("product_id",))
        data = CountLineRecord.model_validate(sent(input))
        async with info.context.write_session() as session:
            return CountLine.of(await counts.record_line(session, count_id, product, data))

    @strawberry.mutation(
        permission_classes=MANAGER,
        description="One adjustment per counted line that differs from the ledger at its "
        "countedAt; all or none",
    )
    async def finish_count(self, info: ContextInfo, id: strawberry.ID) -> FinishCountResult:
        user = await info.context.signed_in()
        count_id = parse_id(id, ("id",))
        async with info.context.write_session() as session:
            return FinishedCount.finished(await counts.finish_count(session, user.id, count_id))

    @strawberry.mutation(
        permission_classes=CLERK, description="Cancel an open count; again changes nothing"
    )
    async def cancel_count(self, info: ContextInfo, id: strawberry.ID) -> CountResult:
        count_id = parse_id(id, ("id",))
        async with info.context.write_session() as session:
            return Count.of(await counts.cancel_count(session, count_id))

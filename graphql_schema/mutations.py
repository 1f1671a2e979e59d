"""Mutation root: the stock writes, through the same services as REST."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.permission import BasePermission
from strawberry.types import Info

from graphql_schema import types
from graphql_schema.errors import Conflict, InsufficientStock, NotFound, ValidationFailed, as_result
from graphql_schema.permissions import ClerkRequired
from inventory.stock import service as stock
from inventory.stock.schemas import MovementCreate, TransferCreate

CLERK: list[type[BasePermission]] = [ClerkRequired]

MovementResult = Annotated[
    types.Movement | InsufficientStock | NotFound | Conflict | ValidationFailed,
    strawberry.union("MovementResult"),
]
TransferResult = Annotated[
    types.Transfer | InsufficientStock | NotFound | Conflict | ValidationFailed,
    strawberry.union("TransferResult"),
]


@strawberry.input
class RecordMovementInput:
    product_id: strawberry.ID
    warehouse_id: strawberry.ID
    kind: types.MovementKind
    quantity: int
    reference: str | None = None
    note: str | None = None


@strawberry.input
class TransferStockInput:
    product_id: strawberry.ID
    from_warehouse_id: strawberry.ID
    to_warehouse_id: strawberry.ID
    quantity: int
    reference: str | None = None


def _id(value: strawberry.ID) -> int | str:
    """An ID as the int the schemas expect; anything else fails their validation."""
    return int(value) if str(value).isdigit() else str(value)


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=CLERK)
    async def record_movement(self, info: Info, input: RecordMovementInput) -> MovementResult:
        user = await info.context.user()

        async def run() -> types.Movement:
            data = MovementCreate.model_validate(
                {
                    "product_id": _id(input.product_id),
                    "warehouse_id": _id(input.warehouse_id),
                    "kind": input.kind.value,
                    "quantity": input.quantity,
                    "reference": input.reference,
                    "note": input.note,
                }
            )
            async with info.context.session() as session:
                result = await stock.record_movement(session, user.id, data)
            info.context.background_tasks.add_task(stock.report_low_stock, result.low_stock)
            return types.Movement.of(result.movement)

        return await as_result(run)

    @strawberry.mutation(permission_classes=CLERK)
    async def transfer_stock(self, info: Info, input: TransferStockInput) -> TransferResult:
        user = await info.context.user()

        async def run() -> types.Transfer:
            data = TransferCreate.model_validate(
                {
                    "product_id": _id(input.product_id),
                    "from_warehouse_id": _id(input.from_warehouse_id),
                    "to_warehouse_id": _id(input.to_warehouse_id),
                    "quantity": input.quantity,
                    "reference": input.reference,
                }
            )
            async with info.context.session() as session:
                result = await stock.transfer_stock(session, user.id, data)
            info.context.background_tasks.add_task(stock.report_low_stock, result.low_stock)
            return types.Transfer(
                id=strawberry.ID(str(result.id)),
                product_id=strawberry.ID(str(result.product_id)),
                from_warehouse_id=strawberry.ID(str(result.from_warehouse_id)),
                to_warehouse_id=strawberry.ID(str(result.to_warehouse_id)),
                quantity=result.quantity,
                reference=result.reference,
                created_at=result.created_at,
                movements=[types.Movement.of(m) for m in result.movements],
            )

        return await as_result(run)

"""Reservations in GraphQL: the REST routes' reads and writes, through the same service.

Input is validated by REST's ``ReservationCreate`` and list filter, so GraphQL
refuses exactly what REST refuses; a refusal is a member of the result union
(see ``graphql_schema.errors``).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.permission import BasePermission

from graphql_schema import types
from graphql_schema.context import ContextInfo
from graphql_schema.errors import PromiseError
from graphql_schema.inputs import UNSET, as_filter, parse_id, sent
from graphql_schema.permissions import ClerkRequired, ViewerRequired
from graphql_schema.queries import After, First, page_size
from inventory.errors import NotFound
from inventory.reservations import service
from inventory.reservations.schemas import ReservationCreate
from inventory.reservations.service import HoldPolicy, ReservationState

CLERK: list[type[BasePermission]] = [ClerkRequired]
VIEWER: list[type[BasePermission]] = [ViewerRequired]


@strawberry.enum(description="REST's reservation status")
class ReservationStatus(Enum):
    HELD = "held"
    CONFIRMED = "confirmed"
    RELEASED = "released"
    EXPIRED = strawberry.enum_value(
        "expired", description="Its expiry passed while held (whether or not swept yet)"
    )


@strawberry.type
class ReservationLine:
    product_id: strawberry.ID
    warehouse_id: strawberry.ID
    quantity: int

    @strawberry.field
    async def product(self, info: ContextInfo) -> types.Product | None:
        row = await info.context.loaders.product.load(int(self.product_id))
        return types.Product.of(row) if row else None

    @strawberry.field
    async def warehouse(self, info: ContextInfo) -> types.Warehouse | None:
        row = await info.context.loaders.warehouse.load(int(self.warehouse_id))
        return types.Warehouse.of(row) if row else None


@strawberry.type
class Reservation:
    id: strawberry.ID
    status: ReservationStatus = strawberry.field(
        description="HELD until it is confirmed, released or expiresAt passes (EXPIRED)"
    )
    reference: str | None
    expires_at: datetime | None = strawberry.field(
        description="Null for a sales order's allocation, which holds until it ships or the "
        "order is cancelled"
    )
    created_at: datetime
    lines: list[ReservationLine]
    movement_ids: list[strawberry.ID] = strawberry.field(
        description="The shipments that confirmed it, one per line; empty unless confirmed"
    )
    sales_order_id: strawberry.ID | None = strawberry.field(
        default=None, description="The sales order it holds allocations for, if any"
    )

    @classmethod
    def of(cls, state: ReservationState) -> Reservation:
        return cls(
            id=strawberry.ID(str(state.id)),
            status=ReservationStatus(state.status.value),
            reference=state.reference,
            expires_at=state.expires_at,
            created_at=state.created_at,
            lines=[
                ReservationLine(
                    product_id=strawberry.ID(str(line.product_id)),
                    warehouse_id=strawberry.ID(str(line.warehouse_id)),
                    quantity=line.quantity,
                )
                for line in state.lines
            ],
            movement_ids=[strawberry.ID(str(i)) for i in state.movement_ids],
            sales_order_id=None
            if state.sales_order_id is None
            else strawberry.ID(str(state.sales_order_id)),
        )


@strawberry.input
class ReservationFilter:
    status: ReservationStatus | None = None
    product_id: strawberry.ID | None = strawberry.field(
        default=None, description="Reservations with a line of it"
    )
    warehouse_id: strawberry.ID | None = strawberry.field(
        default=None, description="Reservations with a line in it"
    )
    reference: str | None = None


@strawberry.input
class ReservationLineInput:
    product_id: strawberry.ID
    warehouse_id: strawberry.ID | None = strawberry.field(
        default=UNSET,
        description="Left out: the warehouse with the most available units (then the lowest id)",
    )
    quantity: int


@strawberry.input
class CreateReservationInput:
    lines: list[ReservationLineInput]
    ttl_seconds: int | None = strawberry.field(
        default=UNSET,
        description="How long the units stay held; the server's default when left out, "
        "at most its maximum",
    )
    reference: str | None = strawberry.field(
        default=UNSET, description="Yours: an order or cart number; shipments carry it"
    )


ReservationResult = Annotated[Reservation | PromiseError, strawberry.union("ReservationResult")]


@strawberry.type
class ReservationQuery:
    @strawberry.field(
        permission_classes=VIEWER, description="The reservation with this id; null if none"
    )
    async def reservation(self, info: ContextInfo, id: strawberry.ID) -> Reservation | None:
        reservation_id = parse_id(id, ("id",))
        async with info.context.session() as session:
            try:
                return Reservation.of(await service.get(session, reservation_id))
            except NotFound:
                return None

    @strawberry.field(permission_classes=VIEWER, description="Reservations, newest first")
    async def reservations(
        self,
        info: ContextInfo,
        filter: ReservationFilter | None = None,
        first: First = None,
        after: After = None,
    ) -> types.Connection[Reservation]:
        flt = as_filter(service.ReservationFilter, filter)
        async with info.context.session() as session:
            rows, next_cursor = await service.list_reservations(
                session, flt, limit=page_size(first), cursor=after
            )
        return types.Connection.of(rows, next_cursor, service.ORDER, Reservation.of)


@strawberry.type
class ReservationMutation:
    @strawberry.mutation(
        permission_classes=CLERK, description="Hold stock for a while: every line, or none"
    )
    async def create_reservation(
        self, info: ContextInfo, input: CreateReservationInput
    ) -> ReservationResult:
        user = await info.context.signed_in()
        body = sent(input)
        body["lines"] = [sent(line) for line in input.lines]
        data = ReservationCreate.model_validate(body)
        settings = info.context.settings
        policy = HoldPolicy.of(settings)
        async with info.context.write_session() as session:
            return Reservation.of(await service.hold(session, user.id, data, policy))

    @strawberry.mutation(
        permission_classes=CLERK,
        description="Ship the held lines (again: the same answer, nothing shipped twice)",
    )
    async def confirm_reservation(self, info: ContextInfo, id: strawberry.ID) -> ReservationResult:
        user = await info.context.signed_in()
        reservation_id = parse_id(id, ("id",))
        async with info.context.write_session() as session:
            return Reservation.of(await service.confirm(session, user.id, reservation_id))

    @strawberry.mutation(
        permission_classes=CLERK,
        description="Give the held units back (again: nothing changes)",
    )
    async def release_reservation(self, info: ContextInfo, id: strawberry.ID) -> ReservationResult:
        reservation_id = parse_id(id, ("id",))
        async with info.context.write_session() as session:
            return Reservation.of(await service.release(session, reservation_id))

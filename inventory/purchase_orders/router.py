"""REST routes for purchase orders: create and edit drafts, place, receive, cancel, read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import Response

from inventory.deps import (
    ClerkUser,
    ManagerUser,
    PageDep,
    ReadUnitOfWorkDep,
    UnitOfWorkDep,
    require_role,
)
from inventory.idempotent_routes import IdempotencyKeyHeader, answer_once
from inventory.kit.pagination import Page
from inventory.kit.schemas import MAX_ID
from inventory.models import Role
from inventory.orders.params import PurchaseOrderFilterQuery
from inventory.problems import problem_responses
from inventory.purchase_orders import service
from inventory.purchase_orders.schemas import (
    PurchaseOrderCreate,
    PurchaseOrderRead,
    PurchaseOrderReceive,
    PurchaseOrderUpdate,
)

router = APIRouter(
    prefix="/purchase-orders", tags=["purchase orders"], dependencies=[require_role(Role.viewer)]
)

PurchaseOrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="The purchase order's id")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PurchaseOrderRead,
    summary="Create a draft purchase order with the next number",
    responses=problem_responses(409, 422),
)
async def create_purchase_order(
    data: PurchaseOrderCreate, response: Response, user: ManagerUser, uow: UnitOfWorkDep
) -> PurchaseOrderRead:
    created = PurchaseOrderRead.model_validate(await service.create(uow.session, user.id, data))
    response.headers["Location"] = f"/api/v1/purchase-orders/{created.id}"
    return created


@router.get(
    "",
    response_model=Page[PurchaseOrderRead],
    summary="Purchase orders, newest first",
    responses=problem_responses(422),
)
async def list_purchase_orders(
    uow: ReadUnitOfWorkDep, page: PageDep, flt: PurchaseOrderFilterQuery
) -> Page[PurchaseOrderRead]:
    items, next_cursor = await service.list_purchase_orders(
        uow.session, flt, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[PurchaseOrderRead.model_validate(i) for i in items], next_cursor=next_cursor)


@router.get(
    "/{order_id}",
    response_model=PurchaseOrderRead,
    summary="One purchase order",
    responses=problem_responses(404, 422),
)
async def get_purchase_order(
    order_id: PurchaseOrderId, uow: ReadUnitOfWorkDep
) -> PurchaseOrderRead:
    return PurchaseOrderRead.model_validate(await service.get(uow.session, order_id))


@router.patch(
    "/{order_id}",
    response_model=PurchaseOrderRead,
    summary="Edit a draft: its fields, and every line when lines are sent",
    responses=problem_responses(404, 409, 422),
)
async def update_purchase_order(
    order_id: PurchaseOrderId, data: PurchaseOrderUpdate, _: ManagerUser, uow: UnitOfWorkDep
) -> PurchaseOrderRead:
    return PurchaseOrderRead.model_validate(await service.update_draft(uow.session, order_id, data))


@router.post(
    "/{order_id}/place",
    response_model=PurchaseOrderRead,
    summary="Place a draft: its units go on order",
    responses=problem_responses(404, 409, 422),
)
async def place_purchase_order(
    order_id: PurchaseOrderId, _: ManagerUser, uow: UnitOfWorkDep
) -> PurchaseOrderRead:
    return PurchaseOrderRead.model_validate(await service.place(uow.session, order_id))


@router.post(
    "/{order_id}/receive",
    response_model=PurchaseOrderRead,
    summary="Receive units of some lines: one receipt each, all or none",
    responses=problem_responses(404, 409, 422),
)
async def receive_purchase_order(
    order_id: PurchaseOrderId,
    data: PurchaseOrderReceive,
    request: Request,
    user: ClerkUser,
    uow: UnitOfWorkDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def run() -> PurchaseOrderRead:
        received = await service.receive(uow.session, user.id, order_id, data)
        return PurchaseOrderRead.model_validate(received)

    # The order's id is part of what a key stands for: the same lines sent to
    # another order are another request.
    operation = f"purchase-order-receipt:{order_id}"
    return await answer_once(
        request, uow, user.id, idempotency_key, operation, data, run, status_code=status.HTTP_200_OK
    )


@router.post(
    "/{order_id}/cancel",
    response_model=PurchaseOrderRead,
    summary="Cancel what is still open: those units leave on_order",
    responses=problem_responses(404, 409, 422),
)
async def cancel_purchase_order(
    order_id: PurchaseOrderId, _: ManagerUser, uow: UnitOfWorkDep
) -> PurchaseOrderRead:
    return PurchaseOrderRead.model_validate(await service.cancel(uow.session, order_id))

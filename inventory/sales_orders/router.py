"""REST routes for sales orders: create, confirm, allocate backorders, ship, cancel, read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from inventory.deps import ClerkUser, PageDep, ReadUnitOfWorkDep, UnitOfWorkDep, require_role
from inventory.idempotent_routes import IdempotencyKeyHeader, answer_once
from inventory.kit.pagination import Page
from inventory.kit.schemas import MAX_ID
from inventory.models import Role
from inventory.orders.params import SalesOrderFilterQuery
from inventory.problems import problem_responses
from inventory.sales_orders import service
from inventory.sales_orders.schemas import SalesOrderCreate, SalesOrderRead, SalesOrderShip

router = APIRouter(
    prefix="/sales-orders", tags=["sales orders"], dependencies=[require_role(Role.viewer)]
)

SalesOrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="The sales order's id")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SalesOrderRead,
    summary="Create a draft sales order",
    responses=problem_responses(404, 409, 422),
)
async def create_order(
    data: SalesOrderCreate, user: ClerkUser, uow: UnitOfWorkDep, response: Response
) -> SalesOrderRead:
    order = await service.create(uow.session, user.id, data)
    response.headers["Location"] = f"/api/v1/sales-orders/{order.id}"
    return SalesOrderRead.model_validate(order)


@router.get(
    "",
    response_model=Page[SalesOrderRead],
    summary="Sales orders, newest first",
    responses=problem_responses(422),
)
async def list_orders(
    uow: ReadUnitOfWorkDep, page: PageDep, flt: SalesOrderFilterQuery
) -> Page[SalesOrderRead]:
    items, next_cursor = await service.list_orders(
        uow.session, flt, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[SalesOrderRead.model_validate(o) for o in items], next_cursor=next_cursor)


@router.get(
    "/{order_id}",
    response_model=SalesOrderRead,
    summary="One sales order",
    responses=problem_responses(404, 422),
)
async def get_order(order_id: SalesOrderId, uow: ReadUnitOfWorkDep) -> SalesOrderRead:
    return SalesOrderRead.model_validate(await service.get(uow.session, order_id))


@router.post(
    "/{order_id}/confirm",
    response_model=SalesOrderRead,
    summary="Confirm a draft: allocate each line from available stock, backorder the rest",
    responses=problem_responses(404, 409, 422),
)
async def confirm(order_id: SalesOrderId, user: ClerkUser, uow: UnitOfWorkDep) -> SalesOrderRead:
    return SalesOrderRead.model_validate(await service.confirm(uow.session, user.id, order_id))


@router.post(
    "/{order_id}/allocate",
    response_model=SalesOrderRead,
    summary="Allocate backordered units from stock that has become available",
    responses=problem_responses(404, 409, 422),
)
async def allocate(order_id: SalesOrderId, user: ClerkUser, uow: UnitOfWorkDep) -> SalesOrderRead:
    return SalesOrderRead.model_validate(await service.allocate(uow.session, user.id, order_id))


@router.post(
    "/{order_id}/ship",
    response_model=SalesOrderRead,
    summary="Ship allocated units, line by line: all lines or none",
    responses=problem_responses(404, 409, 422),
)
async def ship(
    order_id: SalesOrderId,
    data: SalesOrderShip,
    request: Request,
    user: ClerkUser,
    uow: UnitOfWorkDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def run() -> SalesOrderRead:
        shipped = await service.ship(uow.session, user.id, order_id, data)
        return SalesOrderRead.model_validate(shipped)

    return await answer_once(
        request,
        uow,
        user.id,
        idempotency_key,
        f"sales-order-ship {order_id}",
        data,
        run,
        status_code=status.HTTP_200_OK,
    )


@router.post(
    "/{order_id}/cancel",
    response_model=SalesOrderRead,
    summary="Cancel: free what is allocated and not shipped; shipped units stay shipped",
    responses=problem_responses(404, 409, 422),
)
async def cancel(order_id: SalesOrderId, _: ClerkUser, uow: UnitOfWorkDep) -> SalesOrderRead:
    return SalesOrderRead.model_validate(await service.cancel(uow.session, order_id))

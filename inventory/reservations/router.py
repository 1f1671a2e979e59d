"""REST routes for reservations: hold, read, confirm into shipments, release."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import Response

from inventory.deps import (
    ClerkUser,
    PageDep,
    ReadUnitOfWorkDep,
    SettingsDep,
    UnitOfWorkDep,
    require_role,
)
from inventory.idempotent_routes import IdempotencyKeyHeader, answer_once
from inventory.kit.pagination import Page
from inventory.kit.schemas import MAX_ID
from inventory.models import Role
from inventory.problems import problem_responses
from inventory.reservations import service
from inventory.reservations.schemas import ReservationCreate, ReservationRead
from inventory.reservations.service import HoldPolicy, ReservationFilter

router = APIRouter(
    prefix="/reservations", tags=["reservations"], dependencies=[require_role(Role.viewer)]
)

ReservationId = Annotated[int, Path(ge=1, le=MAX_ID, description="The reservation's id")]
ReservationFilterQuery = Annotated[ReservationFilter, Query()]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReservationRead,
    summary="Hold stock for a while: every line, or none",
    responses=problem_responses(404, 409, 422),
)
async def hold(
    data: ReservationCreate,
    request: Request,
    user: ClerkUser,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    policy = HoldPolicy.of(settings)

    async def run() -> ReservationRead:
        held = await service.hold(uow.session, user.id, data, policy)
        return ReservationRead.model_validate(held)

    return await answer_once(request, uow, user.id, idempotency_key, "reservation", data, run)


@router.get(
    "",
    response_model=Page[ReservationRead],
    summary="Reservations, newest first",
    responses=problem_responses(422),
)
async def list_reservations(
    uow: ReadUnitOfWorkDep, page: PageDep, flt: ReservationFilterQuery
) -> Page[ReservationRead]:
    items, next_cursor = await service.list_reservations(
        uow.session, flt, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[ReservationRead.model_validate(i) for i in items], next_cursor=next_cursor)


@router.get(
    "/{reservation_id}",
    response_model=ReservationRead,
    summary="One reservation",
    responses=problem_responses(404, 422),
)
async def get_reservation(reservation_id: ReservationId, uow: ReadUnitOfWorkDep) -> ReservationRead:
    return ReservationRead.model_validate(await service.get(uow.session, reservation_id))


@router.post(
    "/{reservation_id}/confirm",
    response_model=ReservationRead,
    summary="Ship the held lines (again: the same answer, nothing shipped twice)",
    responses=problem_responses(404, 409, 422),
)
async def confirm(
    reservation_id: ReservationId, user: ClerkUser, uow: UnitOfWorkDep
) -> ReservationRead:
    return ReservationRead.model_validate(
        await service.confirm(uow.session, user.id, reservation_id)
    )


@router.post(
    "/{reservation_id}/release",
    response_model=ReservationRead,
    summary="Give the held units back (again: nothing changes)",
    responses=problem_responses(404, 409, 422),
)
async def release(
    reservation_id: ReservationId, _: ClerkUser, uow: UnitOfWorkDep
) -> ReservationRead:
    return ReservationRead.model_validate(await service.release(uow.session, reservation_id))

"""REST routes for the stock ledger: record movements and transfers, read levels, the ledger
and what the stock is worth."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from inventory.cache.invalidation import STOCK_LEVELS
from inventory.cache.responses import cached, model_answer, resource
from inventory.db import Database
from inventory.deps import ClerkUser, DatabaseDep, PageDep, PageQuery, UnitOfWorkDep, require_role
from inventory.idempotent_routes import IdempotencyKeyHeader, answer_once
from inventory.kit.pagination import Page
from inventory.models import Role
from inventory.problems import problem_responses
from inventory.stock import history, service, valuation
from inventory.stock.filters import LevelFilter
from inventory.stock.params import (
    AsOfQuery,
    LedgerFilterQuery,
    LevelFilterQuery,
    ValuationAsOfQuery,
    ValuationFilterQuery,
)
from inventory.stock.schemas import (
    MovementCreate,
    MovementRead,
    StockLevelRead,
    TransferCreate,
    TransferRead,
    ValuationRead,
)

router = APIRouter(prefix="/stock", tags=["stock"], dependencies=[require_role(Role.viewer)])

WRITE_ERRORS = problem_responses(404, 409, 422)


@router.post(
    "/movements",
    status_code=status.HTTP_201_CREATED,
    response_model=MovementRead,
    summary="Record a receipt, shipment or adjustment",
    responses=WRITE_ERRORS,
)
async def record_movement(
    data: MovementCreate,
    request: Request,
    user: ClerkUser,
    uow: UnitOfWorkDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def run() -> MovementRead:
        result = await service.record_movement(uow.session, user.id, data)
        return MovementRead.model_validate(result.movement)

    return await answer_once(request, uow, user.id, idempotency_key, "movement", data, run)


@router.post(
    "/transfers",
    status_code=status.HTTP_201_CREATED,
    response_model=TransferRead,
    summary="Move stock between two warehouses",
    responses=WRITE_ERRORS,
)
async def transfer_stock(
    data: TransferCreate,
    request: Request,
    user: ClerkUser,
    uow: UnitOfWorkDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def run() -> TransferRead:
        result = await service.transfer_stock(uow.session, user.id, data)
        return TransferRead.model_validate(result)

    return await answer_once(request, uow, user.id, idempotency_key, "transfer", data, run)


@router.get(
    "",
    response_model=Page[StockLevelRead],
    summary="Stock levels, now or as of a moment",
    responses=problem_responses(422),
)
async def list_levels(
    request: Request,
    database: DatabaseDep,
    page: PageDep,
    flt: LevelFilterQuery,
    as_of: AsOfQuery = None,
) -> Response:
    if as_of is not None:
        # Not cached: until no transaction in flight can still record an entry at
        # or before the moment, the same question may get a different answer.
        async with database.unit_of_work(write=False) as uow:
            rows, next_cursor = await history.list_levels_at(
                uow.session, flt, as_of, limit=page.limit, cursor=page.cursor
            )
            return model_answer(
                Page(
                    items=[StockLevelRead.model_validate(r) for r in rows], next_cursor=next_cursor
                )
            )
    name = resource("stock", limit=page.limit, cursor=page.cursor, **flt.model_dump())
    tiers = request.app.state.cache
    return await _levels_page(tiers, name, database=database, flt=flt, page=page)


@cached(*STOCK_LEVELS)
async def _levels_page(*, database: Database, flt: LevelFilter, page: PageQuery) -> Response:
    async with database.unit_of_work(write=False) as uow:
        items, next_cursor, true_until = await service.levels_page(
            uow.session, flt, limit=page.limit, cursor=page.cursor
        )
        return model_answer(
            Page(items=[StockLevelRead.model_validate(i) for i in items], next_cursor=next_cursor),
            true_until=true_until,
        )


@router.get(
    "/movements",
    response_model=Page[MovementRead],
    summary="The ledger, newest first",
    responses=problem_responses(422),
)
async def list_movements(
    uow: UnitOfWorkDep,
    page: PageDep,
    flt: LedgerFilterQuery,
) -> Page[MovementRead]:
    items, next_cursor = await service.list_movements(
        uow.session, flt, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[MovementRead.model_validate(i) for i in items], next_cursor=next_cursor)


@router.get(
    "/valuation",
    response_model=ValuationRead,
    summary="What the stock is worth at weighted average cost, now or as of a moment",
    dependencies=[require_role(Role.manager)],
    responses=problem_responses(422),
)
async def stock_valuation(
    uow: UnitOfWorkDep, flt: ValuationFilterQuery, as_of: ValuationAsOfQuery = None
) -> ValuationRead:
    found = await valuation.value_stock(uow.session, flt, as_of)
    return ValuationRead.model_validate(found)

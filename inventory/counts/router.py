"""REST routes for stock counts: parse, authorize, call the count service, shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from inventory.counts import service
from inventory.counts.params import CountFilterQuery
from inventory.counts.schemas import (
    CountFinishRead,
    CountLineRead,
    CountLineRecord,
    CountOpen,
    CountRead,
)
from inventory.deps import ClerkUser, EntryId, ManagerUser, PageDep, UnitOfWorkDep, require_role
from inventory.kit.pagination import Page
from inventory.kit.schemas import MAX_ID
from inventory.models import Role
from inventory.problems import problem_responses

router = APIRouter(prefix="/counts", tags=["counts"], dependencies=[require_role(Role.viewer)])

ProductId = Annotated[int, Path(ge=1, le=MAX_ID, description="The product's id")]


@router.post(
    "",
    response_model=CountRead,
    status_code=status.HTTP_201_CREATED,
    summary="Open a stock count",
    responses=problem_responses(409, 422),
)
async def open_count(
    data: CountOpen, user: ClerkUser, uow: UnitOfWorkDep, response: Response
) -> CountRead:
    count = await service.open_count(uow.session, user.id, data)
    response.headers["Location"] = f"/api/v1/counts/{count.id}"
    return CountRead.model_validate(count)


@router.get(
    "",
    response_model=Page[CountRead],
    summary="Stock counts, newest first",
    responses=problem_responses(422),
)
async def list_counts(uow: UnitOfWorkDep, page: PageDep, flt: CountFilterQuery) -> Page[CountRead]:
    items, next_cursor = await service.list_counts(
        uow.session, flt, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[CountRead.model_validate(c) for c in items], next_cursor=next_cursor)


@router.get(
    "/{count_id}",
    response_model=CountRead,
    summary="Get a stock count",
    responses=problem_responses(404),
)
async def get_count(count_id: EntryId, uow: UnitOfWorkDep) -> CountRead:
    return CountRead.model_validate(await service.get_count(uow.session, count_id))


@router.put(
    "/{count_id}/lines/{product_id}",
    response_model=CountLineRead,
    summary="Record what was found of one product (again, while the count is open)",
    responses=problem_responses(404, 409, 422),
)
async def record_line(
    count_id: EntryId,
    product_id: ProductId,
    data: CountLineRecord,
    user: ClerkUser,
    uow: UnitOfWorkDep,
) -> CountLineRead:
    line = await service.record_line(uow.session, count_id, product_id, data)
    return CountLineRead.model_validate(line)


@router.post(
    "/{count_id}/finish",
    response_model=CountFinishRead,
    summary="Finish a count: one adjustment per counted line that differs from the ledger",
    responses=problem_responses(404, 409),
)
async def finish_count(count_id: EntryId, user: ManagerUser, uow: UnitOfWorkDep) -> CountFinishRead:
    finished = await service.finish_count(uow.session, user.id, count_id)
    read = CountRead.model_validate(finished.count)
    return CountFinishRead(**read.model_dump(), movement_ids=finished.movement_ids)


@router.post(
    "/{count_id}/cancel",
    response_model=CountRead,
    summary="Cancel an open count (again: no change)",
    responses=problem_responses(404, 409),
)
async def cancel_count(count_id: EntryId, user: ClerkUser, uow: UnitOfWorkDep) -> CountRead:
    return CountRead.model_validate(await service.cancel_count(uow.session, count_id))

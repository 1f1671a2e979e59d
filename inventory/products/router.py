"""REST routes for products, with ETag / If-None-Match / If-Match handling."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from sqlalchemy import Row

from inventory.cache.invalidation import PRODUCT, PRODUCT_LIST
from inventory.cache.responses import cached, model_answer, resource
from inventory.cache.routes import CachedAnswer, answers_from_cache
from inventory.db import Database
from inventory.deps import DatabaseDep, EntryId, PageDep, PageQuery, UnitOfWorkDep, require_role
from inventory.kit.pagination import Page
from inventory.models import Product, Role
from inventory.problems import problem_responses
from inventory.products import service
from inventory.products.filters import ProductFilter, ProductSort
from inventory.products.params import ProductFilterQuery
from inventory.products.schemas import ProductCreate, ProductRead, ProductUpdate
from inventory.stock import history
from inventory.stock.params import HistoryFilterQuery
from inventory.stock.schemas import HistoryEntryRead

router = APIRouter(prefix="/products", tags=["products"], dependencies=[require_role(Role.viewer)])
MANAGER = [require_role(Role.manager)]


_ETAG = re.compile(r'(W/)?"([0-9]{1,10})"')


def etag(product: Product | Row[Any]) -> str:
    return f'"{product.version}"'


def _etag_versions(header: str, *, weak_matches: bool) -> set[int]:
    """Versions named by an If-Match / If-None-Match list; unparseable tags match nothing.

    If-None-Match compares weakly (``W/"3"`` matches version 3); If-Match
    compares strongly, so a weak tag there never matches (RFC 9110).
    """
    versions = set()
    for tag in header.split(","):
        match = _ETAG.fullmatch(tag.strip())
        if match and (weak_matches or not match.group(1)):
            versions.add(int(match.group(2)))
    return versions


@router.get(
    "", response_model=Page[ProductRead], summary="List products", responses=problem_responses(422)
)
async def list_products(
    request: Request,
    database: DatabaseDep,
    page: PageDep,
    flt: ProductFilterQuery,
    sort: Annotated[
        ProductSort, Query(description="Name order ignores case; ties go by id")
    ] = ProductSort.sku,
) -> Response:
    name = resource(
        "products", limit=page.limit, cursor=page.cursor, sort=sort.value, **flt.model_dump()
    )
    tiers = request.app.state.cache
    return await _product_page(tiers, name, database=database, flt=flt, sort=sort, page=page)


@cached(*PRODUCT_LIST)
async def _product_page(
    *,
    database: Database,
    flt: ProductFilter,
    sort: ProductSort,
    page: PageQuery,
) -> Response:
    async with database.unit_of_work(write=False) as uow:
        items, next_cursor = await service.list_products(
            uow.session, flt, sort=sort, limit=page.limit, cursor=page.cursor
        )
        return model_answer(
            Page(items=[ProductRead.model_validate(p) for p in items], next_cursor=next_cursor)
        )


@router.post(
    "",
    dependencies=MANAGER,
    response_model=ProductRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a product",
    responses=problem_responses(409, 422),
)
async def create_product(data: ProductCreate, uow: UnitOfWorkDep, response: Response) -> Product:
    product = await service.create_product(uow.session, data)
    response.headers["Location"] = f"/api/v1/products/{product.id}"
    response.headers["ETag"] = etag(product)
    return product


def _product_resource(params: Mapping[str, object]) -> str:
    return resource("product", id=params["product_id"])


def _not_modified_or(request: Request, answer: Response) -> Response:
    """304 when If-None-Match names the answer's version (or is ``*``), else the answer."""
    tag = answer.headers["etag"]
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and (
        if_none_match.strip() == "*"
        or int(tag.strip('"')) in _etag_versions(if_none_match, weak_matches=True)
    ):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": tag})
    return answer


@router.get(
    "/{product_id}",
    response_model=ProductRead,
    summary="Get a product",
    responses={304: {"description": "Not modified"}, **problem_responses(404)},
)
@answers_from_cache(CachedAnswer(PRODUCT, _product_resource, _not_modified_or))
async def get_product(product_id: EntryId, database: DatabaseDep, request: Request) -> Response:
    answer = await _product(
        request.app.state.cache,
        _product_resource({"product_id": product_id}),
        product_id=product_id,
        database=database,
    )
    return _not_modified_or(request, answer)


@cached(*PRODUCT)
async def _product(*, product_id: int, database: Database) -> Response:
    async with database.reading() as connection:
        product = await service.read_product(connection, product_id)
    return model_answer(ProductRead.model_validate(product), etag(product))


@router.get(
    "/{product_id}/history",
    response_model=Page[HistoryEntryRead],
    summary="A product's ledger, oldest first, with the running balance",
    responses=problem_responses(404, 422),
)
async def product_history(
    product_id: EntryId, uow: UnitOfWorkDep, page: PageDep, flt: HistoryFilterQuery
) -> Page[HistoryEntryRead]:
    entries, next_cursor = await history.product_history(
        uow.session, product_id, flt, limit=page.limit, cursor=page.cursor
    )
    return Page(
        items=[HistoryEntryRead.model_validate(e) for e in entries], next_cursor=next_cursor
    )


@router.patch(
    "/{product_id}",
    dependencies=MANAGER,
    response_model=ProductRead,
    summary="Update a product",
    responses=problem_responses(404, 409, 412, 422),
)
async def update_product(
    product_id: EntryId,
    data: ProductUpdate,
    uow: UnitOfWorkDep,
    response: Response,
    if_match: Annotated[
        str | None, Header(description="ETag of the version this change is based on")
    ] = None,
) -> Product:
    expected = None
    if if_match is not None and if_match.strip() != "*":
        expected = _etag_versions(if_match, weak_matches=False)
    product = await service.update_product(
        uow.session, product_id, data, expected_versions=expected
    )
    response.headers["ETag"] = etag(product)
    return product


@router.delete(
    "/{product_id}",
    dependencies=MANAGER,
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a product",
    responses=problem_responses(404, 409),
)
async def delete_product(product_id: EntryId, uow: UnitOfWorkDep) -> None:
    await service.delete_product(uow.session, product_id)

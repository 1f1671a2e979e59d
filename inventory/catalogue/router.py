"""REST routes for categories, suppliers and warehouses: parse, call the service, shape.

One factory builds the five routes of each entry kind, since they differ only
in schemas and wording.
"""

from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel

from inventory.cache.responses import cached, model_answer, resource
from inventory.catalogue import schemas
from inventory.catalogue.service import CatalogueEntries, categories, suppliers, warehouses
from inventory.db import Database
from inventory.deps import DatabaseDep, EntryId, PageDep, PageQuery, UnitOfWorkDep, require_role
from inventory.kit.pagination import Page
from inventory.models import Role
from inventory.problems import problem_responses


def catalogue_router(
    entries: CatalogueEntries[Any],
    *,
    path: str,
    create_schema: type[BaseModel],
    update_schema: type[BaseModel],
    read_schema: type[BaseModel],
) -> APIRouter:
    noun = entries.noun
    plural = path.strip("/")
    router = APIRouter(prefix=path, tags=[plural], dependencies=[require_role(Role.viewer)])
    manager = [require_role(Role.manager)]
    # Annotations built from arguments: FastAPI reads them at run time, mypy cannot.
    Create: Any = create_schema
    Update: Any = update_schema
    Read: Any = read_schema
    ReadPage: Any = Page[read_schema]  # type: ignore[valid-type]

    @router.get(
        "",
        response_model=Page[Read],
        summary=f"List {plural}",
        operation_id=f"list_{plural}",
        responses=problem_responses(422),
    )
    async def list_entries(request: Request, database: DatabaseDep, page: PageDep) -> Any:
        return await entries_page(
            request.app.state.cache,
            resource(plural, limit=page.limit, cursor=page.cursor),
            database=database,
            page=page,
        )

    @cached(entries.table)
    async def entries_page(*, database: Database, page: PageQuery) -> Response:
        async with database.unit_of_work(write=False) as uow:
            items, next_cursor = await entries.list(
                uow.session, limit=page.limit, cursor=page.cursor
            )
            return model_answer(
                ReadPage(items=[Read.model_validate(i) for i in items], next_cursor=next_cursor)
            )

    @router.post(
        "",
        dependencies=manager,
        response_model=Read,
        status_code=status.HTTP_201_CREATED,
        summary=f"Create a {noun}",
        operation_id=f"create_{noun}",
        responses=problem_responses(409, 422),
    )
    async def create_entry(data: Create, uow: UnitOfWorkDep, response: Response) -> Any:
        entry = await entries.create(uow.session, data)
        response.headers["Location"] = f"/api/v1{path}/{entry.id}"
        return entry

    @router.get(
        "/{entry_id}",
        response_model=Read,
        summary=f"Get a {noun}",
        operation_id=f"get_{noun}",
        responses=problem_responses(404),
    )
    async def get_entry(entry_id: EntryId, request: Request, database: DatabaseDep) -> Any:
        return await one_entry(
            request.app.state.cache,
            resource(noun, id=entry_id),
            entry_id=entry_id,
            database=database,
        )

    @cached(entries.table)
    async def one_entry(*, entry_id: int, database: Database) -> Response:
        async with database.unit_of_work(write=False) as uow:
            return model_answer(Read.model_validate(await entries.get(uow.session, entry_id)))

    @router.patch(
        "/{entry_id}",
        dependencies=manager,
        response_model=Read,
        summary=f"Update a {noun}",
        operation_id=f"update_{noun}",
        responses=problem_responses(404, 409, 422),
    )
    async def update_entry(entry_id: EntryId, data: Update, uow: UnitOfWorkDep) -> Any:
        return await entries.update(uow.session, entry_id, data)

    @router.delete(
        "/{entry_id}",
        dependencies=manager,
        status_code=status.HTTP_204_NO_CONTENT,
        summary=f"Delete a {noun}",
        operation_id=f"delete_{noun}",
        responses=problem_responses(404, 409),
    )
    async def delete_entry(entry_id: EntryId, uow: UnitOfWorkDep) -> None:
        await entries.delete(uow.session, entry_id)

    return router


category_router = catalogue_router(
    categories,
    path="/categories",
    create_schema=schemas.CategoryCreate,
    update_schema=schemas.CategoryUpdate,
    read_schema=schemas.CategoryRead,
)
supplier_router = catalogue_router(
    suppliers,
    path="/suppliers",
    create_schema=schemas.SupplierCreate,
    update_schema=schemas.SupplierUpdate,
    read_schema=schemas.SupplierRead,
)
warehouse_router = catalogue_router(
    warehouses,
    path="/warehouses",
    create_schema=schemas.WarehouseCreate,
    update_schema=schemas.WarehouseUpdate,
    read_schema=schemas.WarehouseRead,
)

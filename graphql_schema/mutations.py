"""Mutation root: the stock and catalogue writes, through the same services as REST.

Every resolver is parse, authorize (its permission class), call the service
function REST calls, shape. Input is validated by the REST schemas, so GraphQL
refuses exactly what REST refuses; the schema's exception handlers
(``graphql_schema.errors``) turn a refusal into a member of the result union.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import strawberry
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.permission import BasePermission

from graphql_schema import inputs, types
from graphql_schema.context import ContextInfo
from graphql_schema.errors import EntryError, StockError
from graphql_schema.inputs import parse_id, sent
from graphql_schema.permissions import ClerkRequired, ManagerRequired
from inventory.catalogue import schemas as catalogue_schemas
from inventory.catalogue import service as catalogue
from inventory.products import service as products
from inventory.products.schemas import ProductCreate, ProductUpdate
from inventory.stock import service as stock
from inventory.stock.schemas import MovementCreate, TransferCreate

CLERK: list[type[BasePermission]] = [ClerkRequired]
MANAGER: list[type[BasePermission]] = [ManagerRequired]

M = TypeVar("M")
R = TypeVar("R")

MovementResult = Annotated[types.Movement | StockError, strawberry.union("MovementResult")]
TransferResult = Annotated[types.Transfer | StockError, strawberry.union("TransferResult")]
CategoryResult = Annotated[types.Category | EntryError, strawberry.union("CategoryResult")]
SupplierResult = Annotated[types.Supplier | EntryError, strawberry.union("SupplierResult")]
WarehouseResult = Annotated[types.Warehouse | EntryError, strawberry.union("WarehouseResult")]
ProductResult = Annotated[types.Product | EntryError, strawberry.union("ProductResult")]
DeleteResult = Annotated[types.Deleted | EntryError, strawberry.union("DeleteResult")]


@dataclass(frozen=True)
class CatalogueWrites(Generic[M, R]):
    """Create, update and delete for one catalogue family, as REST's router does them.

    The GraphQL side of ``catalogue_router``: the family's REST schemas
    validate, its service functions decide, and ``shape`` turns the stored
    row into the GraphQL type.
    """

    create_schema: type[BaseModel]
    update_schema: type[BaseModel]
    create_entry: Callable[[AsyncSession, Any], Awaitable[M]]
    update_entry: Callable[..., Awaitable[M]]
    delete_entry: Callable[[AsyncSession, int], Awaitable[None]]
    shape: Callable[[M], R]

    async def create(self, info: ContextInfo, input: object) -> R:
        data = self.create_schema.model_validate(sent(input))
        async with info.context.write_session() as session:
            return self.shape(await self.create_entry(session, data))

    async def update(
        self, info: ContextInfo, id: strawberry.ID, input: object, **options: Any
    ) -> R:
        entry_id = parse_id(id, ("id",))
        data = self.update_schema.model_validate(sent(input))
        async with info.context.write_session() as session:
            return self.shape(await self.update_entry(session, entry_id, data, **options))

    async def delete(self, info: ContextInfo, id: strawberry.ID) -> types.Deleted:
        entry_id = parse_id(id, ("id",))
        async with info.context.write_session() as session:
            await self.delete_entry(session, entry_id)
        return types.Deleted(id=strawberry.ID(str(entry_id)))


CATEGORIES = CatalogueWrites(
    create_schema=catalogue_schemas.CategoryCreate,
    update_schema=catalogue_schemas.CategoryUpdate,
    create_entry=catalogue.categories.create,
    update_entry=catalogue.categories.update,
    delete_entry=catalogue.categories.delete,
    shape=types.Category.of,
)
SUPPLIERS = CatalogueWrites(
    create_schema=catalogue_schemas.SupplierCreate,
    update_schema=catalogue_schemas.SupplierUpdate,
    create_entry=catalogue.suppliers.create,
    update_entry=catalogue.suppliers.update,
    delete_entry=catalogue.suppliers.delete,
    shape=types.Supplier.of,
)
WAREHOUSES = CatalogueWrites(
    create_schema=catalogue_schemas.WarehouseCreate,
    update_schema=catalogue_schemas.WarehouseUpdate,
    create_entry=catalogue.warehouses.create,
    update_entry=catalogue.warehouses.update,
    delete_entry=catalogue.warehouses.delete,
    shape=types.Warehouse.of,
)
PRODUCTS = CatalogueWrites(
    create_schema=ProductCreate,
    update_schema=ProductUpdate,
    create_entry=products.create_product,
    update_entry=products.update_product,
    delete_entry=products.delete_product,
    shape=types.Product.of,
)


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=CLERK)
    async def record_movement(
        self, info: ContextInfo, input: inputs.RecordMovementInput
    ) -> MovementResult:
        user = await info.context.signed_in()
        data = MovementCreate.model_validate(sent(input))
        async with info.context.write_session() as session:
            result = await stock.record_movement(session, user.id, data)
        return types.Movement.of(result.movement)

    @strawberry.mutation(permission_classes=CLERK)
    async def transfer_stock(
        self, info: ContextInfo, input: inputs.TransferStockInput
    ) -> TransferResult:
        user = await info.context.signed_in()
        data = TransferCreate.model_validate(sent(input))
        async with info.context.write_session() as session:
            result = await stock.transfer_stock(session, user.id, data)
        return types.Transfer.of(result)

    @strawberry.mutation(permission_classes=MANAGER)
    async def create_category(
        self, info: ContextInfo, input: inputs.CreateCategoryInput
    ) -> CategoryResult:
        return await CATEGORIES.create(info, input)

    @strawberry.mutation(permission_classes=MANAGER)
    async def update_category(
        self, info: ContextInfo, id: strawberry.ID, input: inputs.UpdateCategoryInput
    ) -> CategoryResult:
        return await CATEGORIES.update(info, id, input)

    @strawberry.mutation(permission_classes=MANAGER)
    async def delete_category(self, info: ContextInfo, id: strawberry.ID) -> DeleteResult:
        return await CATEGORIES.delete(info, id)

    @strawberry.mutation(permission_classes=MANAGER)
    async def create_supplier(
        self, info: ContextInfo, input: inputs.CreateSupplierInput
    ) -> SupplierResult:
        return await SUPPLIERS.create(info, input)

    @strawberry.mutation(permission_classes=MANAGER)
    async def update_supplier(
        self, info: ContextInfo, id: strawberry.ID, input: inputs.UpdateSupplierInput
    ) -> SupplierResult:
        return await SUPPLIERS.update(info, id, input)

    @strawberry.mutation(permission_classes=MANAGER)
    async def delete_supplier(self, info: ContextInfo, id: strawberry.ID) -> DeleteResult:
        return await SUPPLIERS.delete(info, id)

    @strawberry.mutation(permission_classes=MANAGER)
    async def create_warehouse(
        self, info: ContextInfo, input: inputs.CreateWarehouseInput
    ) -> WarehouseResult:
        return await WAREHOUSES.create(info, input)

    @strawberry.mutation(permission_classes=MANAGER)
    async def update_warehouse(
        self, info: ContextInfo, id: strawberry.ID, input: inputs.UpdateWarehouseInput
    ) -> WarehouseResult:
        return await WAREHOUSES.update(info, id, input)

    @strawberry.mutation(permission_classes=MANAGER)
    async def delete_warehouse(self, info: ContextInfo, id: strawberry.ID) -> DeleteResult:
        return await WAREHOUSES.delete(info, id)

    @strawberry.mutation(permission_classes=MANAGER)
    async def create_product(
        self, info: ContextInfo, input: inputs.CreateProductInput
    ) -> ProductResult:
        return await PRODUCTS.create(info, input)

    @strawberry.mutation(permission_classes=MANAGER)
    async def update_product(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        input: inputs.UpdateProductInput,
        expected_version: Annotated[
            int | None,
            strawberry.argument(
                description="Refuse with PreconditionFailed unless the product is at this "
                "version (REST's If-Match)"
            ),
        ] = None,
    ) -> ProductResult:
        expected = None if expected_version is None else [expected_version]
        return await PRODUCTS.update(info, id, input, expected_versions=expected)

    @strawberry.mutation(permission_classes=MANAGER)
    async def delete_product(self, info: ContextInfo, id: strawberry.ID) -> DeleteResult:
        return await PRODUCTS.delete(info, id)

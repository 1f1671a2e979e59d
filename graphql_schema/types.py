"""GraphQL object types: the REST fields in camelCase, ids as ``ID`` strings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar, cast

import strawberry
from strawberry.dataloader import DataLoader

from graphql_schema.context import ContextInfo
from graphql_schema.loaders import MISSING, loaded
from inventory import models
from inventory.kit.money import cost_text, price_text
from inventory.kit.pagination import SortOrder, encode_cursor
from inventory.stock.history import HistoryEntry as HistoryRow
from inventory.stock.history import LevelAt
from inventory.stock.service import TransferResult

if TYPE_CHECKING:
    from graphql_schema.inputs import ProductHistoryFilter

N = TypeVar("N")
R = TypeVar("R")
S = TypeVar("S")


@strawberry.enum(description="What a client records with recordMovement")
class MovementKind(Enum):
    RECEIPT = "receipt"
    SHIPMENT = "shipment"
    ADJUSTMENT = "adjustment"


@strawberry.enum(description="Every kind of ledger entry, transfer legs included")
class LedgerKind(Enum):
    RECEIPT = "receipt"
    SHIPMENT = "shipment"
    ADJUSTMENT = "adjustment"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"


@strawberry.enum(description="How `products` is ordered; REST's `sort` values")
class ProductSort(Enum):
    SKU = "sku"
    NAME = strawberry.enum_value("name", description="Case-insensitive; ties go by id")
    UPDATED_AT = "updated_at"
    UPDATED_AT_DESC = "-updated_at"


@strawberry.type
class Category:
    id: strawberry.ID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: models.Category) -> Category:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type
class Supplier:
    id: strawberry.ID
    name: str
    email: str | None
    phone: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: models.Supplier) -> Supplier:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            email=row.email,
            phone=row.phone,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type
class Warehouse:
    id: strawberry.ID
    code: str
    name: str
    address: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: models.Warehouse) -> Warehouse:
        return cls(
            id=strawberry.ID(str(row.id)),
            code=row.code,
            name=row.name,
            address=row.address,
            is_active=row.is_active,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type
class StockLevel:
    product_id: strawberry.ID
    warehouse_id: strawberry.ID
    quantity: int
    reserved: int | None = strawberry.field(
        description="Units promised by reservations that have not expired; null for a level "
        "rebuilt as of a past moment"
    )
    available: int | None = strawberry.field(
        description="quantity - reserved: what may still be promised; null with reserved"
    )
    reorder_level: int
    updated_at: datetime

    @strawberry.field
    async def product(self, info: ContextInfo) -> Product | None:
        row = await info.context.loaders.product.load(int(self.product_id))
        return Product.of(row) if row else None

    @strawberry.field
    def warehouse(self, info: ContextInfo) -> Warehouse | None:
        return _entry(info.context.loaders.warehouse, int(self.warehouse_id), Warehouse.of)

    @classmethod
    def of(cls, row: models.StockLevel | LevelAt) -> StockLevel:
        return cls(
            product_id=strawberry.ID(str(row.product_id)),
            warehouse_id=strawberry.ID(str(row.warehouse_id)),
            quantity=row.quantity,
            reserved=row.reserved,
            available=row.available,
            reorder_level=row.reorder_level,
            updated_at=row.updated_at,
        )


@strawberry.type
class Product:
    id: strawberry.ID
    sku: str
    name: str
    description: str | None
    category_id: strawberry.ID | None
    supplier_id: strawberry.ID | None
    unit_price: str = strawberry.field(description="Decimal with two places, as a string")
    reorder_level: int
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime

    # Plain methods that return the value when it was fetched ahead (a page of
    # products prefetches what its selection asks for) and an awaitable otherwise.
    @strawberry.field
    def category(self, info: ContextInfo) -> Category | None:
        if self.category_id is None:
            return None
        return _entry(info.context.loaders.category, int(self.category_id), Category.of)

    @strawberry.field
    def supplier(self, info: ContextInfo) -> Supplier | None:
        if self.supplier_id is None:
            return None
        return _entry(info.context.loaders.supplier, int(self.supplier_id), Supplier.of)

    @strawberry.field
    def stock_levels(self, info: ContextInfo) -> list[StockLevel]:
        loader = info.context.loaders.levels_of_product
        rows = loaded(loader, int(self.id))
        if rows is not MISSING:
            return [StockLevel.of(row) for row in rows]

        async def later() -> list[StockLevel]:
            return [StockLevel.of(row) for row in await loader.load(int(self.id))]

        return cast(list[StockLevel], later())

    @strawberry.field(
        description="The product's ledger entries, oldest first, each with the running balance"
    )
    async def history(
        self,
        info: ContextInfo,
        filter: Annotated[ProductHistoryFilter, strawberry.lazy("graphql_schema.inputs")]
        | None = None,
        first: Annotated[
            int | None,
            strawberry.argument(description="Page size, 1 to 200 as REST's limit; 50 if left out"),
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="The `endCursor` of the previous page")
        ] = None,
    ) -> Connection[HistoryEntry]:
        from graphql_schema import history  # it builds on this module

        return await history.product_history(info, int(self.id), filter, first, after)

    @classmethod
    def of(cls, row: models.Product) -> Product:
        return cls(
            id=strawberry.ID(str(row.id)),
            sku=row.sku,
            name=row.name,
            description=row.description,
            category_id=_id(row.category_id),
            supplier_id=_id(row.supplier_id),
            unit_price=price_text(row.unit_price),
            reorder_level=row.reorder_level,
            is_active=row.is_active,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type
class Movement:
    id: strawberry.ID
    product_id: strawberry.ID
    warehouse_id: strawberry.ID
    kind: LedgerKind
    quantity: int
    balance: int = strawberry.field(description="The level's quantity right after this entry")
    reference: str | None
    note: str | None
    unit_cost: str | None = strawberry.field(
        description="What each unit came in at, four places as a string: a receipt's cost, "
        "or a transfer's (the source's average cost, on both legs); null when none was given"
    )
    user_id: strawberry.ID | None
    transfer_id: strawberry.ID | None
    created_at: datetime

    @strawberry.field
    async def product(self, info: ContextInfo) -> Product | None:
        row = await info.context.loaders.product.load(int(self.product_id))
        return Product.of(row) if row else None

    @classmethod
    def of(cls, row: models.StockMovement) -> Movement:
        return cls(**_movement_fields(row))


def _movement_fields(row: models.StockMovement | HistoryRow) -> dict[str, Any]:
    return {
        "id": strawberry.ID(str(row.id)),
        "product_id": strawberry.ID(str(row.product_id)),
        "warehouse_id": strawberry.ID(str(row.warehouse_id)),
        "kind": LedgerKind(row.kind.value),
        "quantity": row.quantity,
        "balance": row.balance,
        "reference": row.reference,
        "note": row.note,
        "unit_cost": None if row.unit_cost is None else cost_text(row.unit_cost),
        "user_id": _id(row.user_id),
        "transfer_id": strawberry.ID(str(row.transfer_id)) if row.transfer_id else None,
        "created_at": row.created_at,
    }


@strawberry.type(description="A ledger entry in a product's history")
class HistoryEntry(Movement):
    running_balance: int = strawberry.field(
        description="The product's total on hand right after this entry, across every "
        "warehouse, or the one warehouse the history is narrowed to"
    )

    @classmethod
    def of_entry(cls, row: HistoryRow) -> HistoryEntry:
        return cls(**_movement_fields(row), running_balance=row.running_balance)


@strawberry.type
class User:
    id: strawberry.ID
    email: str
    full_name: str | None
    role: str
    is_active: bool

    @classmethod
    def of(cls, row: models.User) -> User:
        return cls(
            id=strawberry.ID(str(row.id)),
            email=row.email,
            full_name=row.full_name,
            role=row.role.value,
            is_active=row.is_active,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; REST's `next_cursor`, null on the last page"
    )


@strawberry.type
class Edge(Generic[N]):
    node: N
    cursor: str = strawberry.field(description="The REST cursor that resumes after this node")


@strawberry.type(description="One page of a list, in the order and with the cursors REST uses")
class Connection(Generic[N]):
    """Named after its node in the schema: ``Connection[Product]`` is ``ProductConnection``."""

    edges: list[Edge[N]]
    page_info: PageInfo

    @classmethod
    def of(
        cls,
        rows: Sequence[R],
        next_cursor: str | None,
        order: SortOrder,
        node: Callable[[R], N],
    ) -> Connection[N]:
        """A page as a list service returns it: its rows and the next page's cursor."""
        return cls(
            edges=[Edge(node=node(row), cursor=encode_cursor(order, row)) for row in rows],
            page_info=PageInfo(has_next_page=next_cursor is not None, end_cursor=next_cursor),
        )


def _id(value: Any) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


@strawberry.type
class Transfer:
    id: strawberry.ID
    product_id: strawberry.ID
    from_warehouse_id: strawberry.ID
    to_warehouse_id: strawberry.ID
    quantity: int
    reference: str | None
    created_at: datetime
    movements: list[Movement]

    @classmethod
    def of(cls, result: TransferResult) -> Transfer:
        return cls(
            id=strawberry.ID(str(result.id)),
            product_id=strawberry.ID(str(result.product_id)),
            from_warehouse_id=strawberry.ID(str(result.from_warehouse_id)),
            to_warehouse_id=strawberry.ID(str(result.to_warehouse_id)),
            quantity=result.quantity,
            reference=result.reference,
            created_at=result.created_at,
            movements=[Movement.of(m) for m in result.movements],
        )


@strawberry.type(description="What a delete mutation answers: the id of the entry removed")
class Deleted:
    id: strawberry.ID


def _entry(loader: DataLoader[int, R | None], key: int, shape: Callable[[R], S]) -> S | None:
    """``shape(row)`` now if the row is loaded; otherwise an awaitable of it (graphql-core
    awaits whatever a resolver returns that is awaitable)."""
    row = loaded(loader, key)
    if row is not MISSING:
        return shape(row) if row is not None else None

    async def later() -> S | None:
        found = await loader.load(key)
        return shape(found) if found is not None else None

    return cast(S | None, later())

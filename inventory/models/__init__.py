"""All ORM tables, in one package so cross-referencing tables import cleanly and
Alembic sees one metadata."""

from inventory.models.catalogue import Category, Supplier, Warehouse
from inventory.models.counts import CountStatus, StockCount, StockCountLine
from inventory.models.idempotency import IdempotencyKey
from inventory.models.imports import ImportJob, JobStatus
from inventory.models.orders import (
    OrderNumber,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderStatus,
    SalesOrder,
    SalesOrderLine,
    SalesOrderStatus,
)
from inventory.models.products import Product
from inventory.models.reservations import Reservation, ReservationLine, ReservationStatus
from inventory.models.sessions import RefreshToken
from inventory.models.stock import MovementKind, StockLevel, StockMovement
from inventory.models.users import Role, User

__all__ = [
    "Category",
    "CountStatus",
    "IdempotencyKey",
    "ImportJob",
    "JobStatus",
    "MovementKind",
    "OrderNumber",
    "Product",
    "PurchaseOrder",
    "PurchaseOrderLine",
    "PurchaseOrderStatus",
    "RefreshToken",
    "Reservation",
    "ReservationLine",
    "ReservationStatus",
    "Role",
    "SalesOrder",
    "SalesOrderLine",
    "SalesOrderStatus",
    "StockCount",
    "StockCountLine",
    "StockLevel",
    "StockMovement",
    "Supplier",
    "User",
    "Warehouse",
]

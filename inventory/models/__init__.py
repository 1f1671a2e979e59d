"""All ORM tables, in one package so cross-referencing tables import cleanly and
Alembic sees one metadata."""

from inventory.models.catalogue import Category, Supplier, Warehouse
from inventory.models.idempotency import IdempotencyKey
from inventory.models.imports import ImportJob, JobStatus
from inventory.models.products import Product
from inventory.models.sessions import RefreshToken
from inventory.models.stock import MovementKind, StockLevel, StockMovement
from inventory.models.users import Role, User

__all__ = [
    "Category",
    "IdempotencyKey",
    "ImportJob",
    "JobStatus",
    "MovementKind",
    "Product",
    "RefreshToken",
    "Role",
    "StockLevel",
    "StockMovement",
    "Supplier",
    "User",
    "Warehouse",
]

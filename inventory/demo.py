"""A realistic demo catalogue and one user per role, created through the service layer.

Demo data goes only into an empty database: its users have published passwords,
so it never adds them beside real accounts, and never mixes its catalogue
into real data. Running it again on a database that has anything changes nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.catalogue import service as catalogue
from inventory.catalogue.schemas import CategoryCreate, SupplierCreate, WarehouseCreate
from inventory.models import (
    Category,
    ImportJob,
    Product,
    Role,
    StockMovement,
    Supplier,
    User,
    Warehouse,
)
from inventory.products.schemas import ProductCreate
from inventory.products.service import create_product
from inventory.stock.schemas import MovementCreate, RecordedKind
from inventory.stock.service import record_movement
from inventory.users import service as users
from inventory.users.schemas import UserCreate

PRODUCTS_PER_CATEGORY = 40

# category -> (SKU prefix, description, item name templates with one {size} each)
CATALOGUE: dict[str, tuple[str, str, list[str]]] = {
    "Fasteners": (
        "FAS",
        "Bolts, screws, nuts and anchors",
        [
            "Hex Bolt M{size}",
            "Wood Screw {size}mm",
            "Flat Washer M{size}",
            "Nylon Lock Nut M{size}",
            "Wall Anchor {size}mm",
        ],
    ),
    "Electrical": (
        "ELE",
        "Cable, lighting and power accessories",
        [
            "Cable Tie {size}mm",
            "Copper Wire {size}m",
            "LED Bulb E27 {size}W",
            "Extension Lead {size}m",
            "Cartridge Fuse {size}A",
        ],
    ),
    "Plumbing": (
        "PLU",
        "Pipes, fittings and valves",
        [
            "PVC Pipe {size}mm",
            "Brass Elbow {size}mm",
            "Ball Valve {size}mm",
            "PTFE Tape {size}m",
            "Compression Coupler {size}mm",
        ],
    ),
    "Hand Tools": (
        "TOO",
        "Tools for the workshop and the site",
        [
            "Claw Hammer {size}g",
            "Adjustable Wrench {size}mm",
            "Tape Measure {size}m",
            "Hacksaw Blade {size}TPI",
            "Chisel {size}mm",
        ],
    ),
    "Safety": (
        "SAF",
        "Personal protective equipment",
        [
            "Nitrile Gloves size {size}",
            "Hi-Vis Vest size {size}",
            "Safety Boots EU {size}",
            "Ear Defenders {size}dB",
            "Dust Mask pack of {size}",
        ],
    ),
    "Packaging": (
        "PAC",
        "Boxes, tape and protective wrap",
        [
            "Cardboard Box {size}cm",
            "Packing Tape {size}m",
            "Bubble Wrap {size}m",
            "Stretch Film {size}mm",
            "Mailing Bag {size}cm",
        ],
    ),
    "Cleaning": (
        "CLE",
        "Janitorial supplies",
        [
            "Degreaser {size}L",
            "Bin Bags {size}L",
            "Microfibre Cloth pack of {size}",
            "Floor Cleaner {size}L",
            "Hand Soap {size}ml",
        ],
    ),
    "Office": (
        "OFF",
        "Stationery and office consumables",
        [
            "Label Roll {size}mm",
            "Ballpoint Pens pack of {size}",
            "A4 Paper {size}gsm",
            "Ring Binder {size}mm",
            "Sticky Notes pack of {size}",
        ],
    ),
}
SIZES = [2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 32, 40, 50, 63, 75, 100, 150, 200, 250]
SUPPLIERS = [
    ("Northwind Industrial", "orders@northwind.example", "+44 20 7946 0101"),
    ("Acme Trade Supply", "sales@acme-trade.example", "+1 555 0100"),
    ("Baltic Hardware", "info@baltic-hw.example", "+49 30 901820"),
    ("Harbour Packaging", "hello@harbourpack.example", "+61 2 5550 1234"),
    ("Summit Safety", "support@summitsafety.example", "+1 555 0199"),
    ("Meridian Electrical", "trade@meridian-elec.example", "+33 1 70 18 99 00"),
]
WAREHOUSES = [
    ("MAIN", "Main distribution centre", "1 Dock Road, Riverside"),
    ("EAST", "East depot", "14 Station Lane, Eastfield"),
    ("WEST", "West depot", "Unit 7, Western Trading Estate"),
]

DEMO_PRODUCT_COUNT = PRODUCTS_PER_CATEGORY * len(CATALOGUE)

# Development only: `inventory seed --demo` refuses to run in production.
DEMO_USERS = [(role, f"{role.value}@example.com", f"{role.value}-demo-password") for role in Role]


# What makes a database not empty, as the operator would name it.
_HOLDINGS = (
    ("users", User),
    ("products", Product),
    ("categories", Category),
    ("suppliers", Supplier),
    ("warehouses", Warehouse),
    ("stock movements", StockMovement),
    ("import jobs", ImportJob),
)


@dataclass(frozen=True)
class DemoOutcome:
    """What ``seed_into_empty`` did: loaded users and products, or found data and did nothing."""

    users: int = 0
    products: int = 0
    found: dict[str, int] = field(default_factory=dict)
    """Rows already there, by kind, when it did nothing."""


async def existing_data(session: AsyncSession) -> dict[str, int]:
    """How many rows of each kind the database holds; empty for an empty database."""
    found = {}
    for label, model in _HOLDINGS:
        if count := (await session.scalar(select(func.count()).select_from(model))) or 0:
            found[label] = count
    return found


async def seed_into_empty(
    session: AsyncSession, on_product: Callable[[], None] = lambda: None
) -> DemoOutcome:
    """Load the demo users and catalogue into an empty database; into any other, nothing."""
    if found := await existing_data(session):
        return DemoOutcome(found=found)
    users_made = await seed_demo_users(session)
    return DemoOutcome(users=users_made, products=await seed_demo(session, on_product))


async def seed_demo_users(session: AsyncSession) -> int:
    """Create one demo user per role; return how many were made."""
    for role, email, password in DEMO_USERS:
        await users.create_user(
            session,
            UserCreate.model_validate({"email": email, "password": password, "role": role}),
        )
    return len(DEMO_USERS)


async def seed_demo(session: AsyncSession, on_product: Callable[[], None] = lambda: None) -> int:
    """Create the demo catalogue in ``session``'s transaction; return the products made."""
    rng = random.Random(20261126)
    warehouse_ids = []
    for code, name, address in WAREHOUSES:
        warehouse = await catalogue.warehouses.create(
            session, WarehouseCreate(code=code, name=name, address=address)
        )
        warehouse_ids.append(warehouse.id)
    supplier_ids = []
    for name, email, phone in SUPPLIERS:
        supplier = await catalogue.suppliers.create(
            session, SupplierCreate(name=name, email=email, phone=phone)
        )
        supplier_ids.append(supplier.id)

    created = 0
    for category_name, (prefix, description, templates) in CATALOGUE.items():
        category = await catalogue.categories.create(
            session, CategoryCreate(name=category_name, description=description)
        )
        names = [template.format(size=size) for size in SIZES for template in templates]
        for number, name in enumerate(rng.sample(names, PRODUCTS_PER_CATEGORY), start=1):
            price = Decimal(rng.randint(25, 25_000)) / 100
            product = await create_product(
                session,
                ProductCreate(
                    sku=f"{prefix}-{number:04d}",
                    name=name,
                    description=f"{name} ({category_name.lower()})",
                    category_id=category.id,
                    supplier_id=rng.choice(supplier_ids),
                    unit_price=price,
                    reorder_level=rng.choice([0, 5, 10, 20, 50, 100]),
                    is_active=rng.random() > 0.05,
                ),
            )
            if product.is_active:
                await _stock(session, rng, product.id, warehouse_ids)
            created += 1
            on_product()
    return created


async def _stock(
    session: AsyncSession, rng: random.Random, product_id: int, warehouse_ids: list[int]
) -> None:
    """A little history per product: receipts in some warehouses, and some shipments."""
    for warehouse_id in warehouse_ids:
        if rng.random() < 0.6:
            received = rng.randint(1, 400)
            moves = [(RecordedKind.receipt, received, "PO")]
            if rng.random() < 0.5:
                moves.append((RecordedKind.shipment, rng.randint(1, received), "SO"))
            for kind, quantity, document in moves:
                movement = MovementCreate(
                    product_id=product_id,
                    warehouse_id=warehouse_id,
                    kind=kind,
                    quantity=quantity,
                    reference=f"{document}-{rng.randint(10_000, 99_999)}",
                )
                await record_movement(session, None, movement)

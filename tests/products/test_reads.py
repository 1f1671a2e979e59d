"""The product read without the ORM (one Core row, for the cached GET) beside the ORM read.

Both reads of the same stored products must give the same values and, shaped
for the API, the same answer and ETag: nulls, prices at every scale, unicode
text, timestamps and versions after an update.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import FastAPI

from inventory.catalogue.schemas import CategoryCreate, SupplierCreate
from inventory.catalogue.service import categories, suppliers
from inventory.models import Product
from inventory.products import service
from inventory.products.router import etag
from inventory.products.schemas import ProductCreate, ProductRead, ProductUpdate


async def _stored_products(app: FastAPI) -> list[int]:
    async with app.state.db.unit_of_work(write=True) as uow:
        session = uow.session
        category = await categories.create(session, CategoryCreate(name="Tools"))
        supplier = await suppliers.create(session, SupplierCreate(name="Acme"))
        made = [
            await service.create_product(
                session, ProductCreate(sku="N-1", name="Bare", unit_price=Decimal("0"))
            ),
            await service.create_product(
                session,
                ProductCreate(
                    sku="F-1",
                    name="Säge «Ø 40»",
                    description="multi\nline ✓",
                    category_id=category.id,
                    supplier_id=supplier.id,
                    unit_price=Decimal("9999999999.99"),
                    reorder_level=7,
                    is_active=False,
                ),
            ),
            await service.create_product(
                session, ProductCreate(sku="C-1", name="Cent", unit_price=Decimal("0.01"))
            ),
            await service.create_product(
                session, ProductCreate(sku="R-1", name="Round", unit_price=Decimal("12.5"))
            ),
        ]
        ids = [product.id for product in made]
    async with app.state.db.unit_of_work(write=True) as uow:
        await service.update_product(uow.session, ids[3], ProductUpdate(description="changed"))
    return ids


async def _both_reads(app: FastAPI, product_id: int) -> tuple[Any, Product]:
    async with app.state.db.reading() as connection:
        row = await service.read_product(connection, product_id)
    async with app.state.db.unit_of_work(write=False) as uow:
        product = await service.get_product(uow.session, product_id)
    return row, product


async def test_the_core_read_gives_the_orm_reads_values(app, accounts):
    for product_id in await _stored_products(app):
        row, product = await _both_reads(app, product_id)
        orm = {column.key: getattr(product, column.key) for column in Product.__table__.columns}
        core = dict(row._mapping)
        assert core == orm
        assert {k: type(v) for k, v in core.items()} == {k: type(v) for k, v in orm.items()}
        assert core["created_at"].tzinfo is not None


async def test_the_core_read_gives_the_same_answer_and_etag(app, accounts):
    ids = await _stored_products(app)
    for product_id in ids:
        row, product = await _both_reads(app, product_id)
        assert ProductRead.model_validate(row).model_dump_json() == (
            ProductRead.model_validate(product).model_dump_json()
        )
        assert etag(row) == etag(product)
    row, _ = await _both_reads(app, ids[3])
    assert row.version == 2
    assert ProductRead.model_validate(row).unit_price == Decimal("12.50")

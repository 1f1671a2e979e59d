"""`inventory count import COUNT_ID FILE.csv`, run as a user runs it: a real process."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from inventory.config import Settings
from inventory.counts import service as counts
from inventory.counts.schemas import CountOpen
from inventory.db import create_engine, open_database
from inventory.models import Product, StockCountLine, Warehouse
from inventory.stock.schemas import MovementCreate
from inventory.stock.service import record_movement
from tests.processes import run


async def _count_with_stock(url: str) -> int:
    """BOLT-1 (10 on hand) and NUT-1 (4) in an open count; GLUE-1 exists but is not in it."""
    database = open_database(Settings(database_url=url))
    try:
        async with database.unit_of_work(write=True) as uow:
            session = uow.session
            warehouse = Warehouse(code="MAIN", name="Main")
            products = [
                Product(sku=sku, name=sku, unit_price=Decimal("1.00"))
                for sku in ("BOLT-1", "NUT-1", "GLUE-1")
            ]
            session.add_all([warehouse, *products])
            await session.flush()
            for product, quantity in zip(products[:2], (10, 4), strict=True):
                await record_movement(
                    session,
                    None,
                    MovementCreate.model_validate(
                        {
                            "product_id": product.id,
                            "warehouse_id": warehouse.id,
                            "kind": "receipt",
                            "quantity": quantity,
                        }
                    ),
                )
            count = await counts.open_count(session, None, CountOpen(warehouse_id=warehouse.id))
            return count.id
    finally:
        await database.engine.dispose()


async def _lines(url: str) -> dict[str, tuple[int | None, int | None]]:
    """SKU -> (counted, difference) of every count line."""
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Product.sku, StockCountLine.counted, StockCountLine.difference).join(
                    Product, Product.id == StockCountLine.product_id
                )
            )
            return {sku: (counted, difference) for sku, counted, difference in rows}
    finally:
        await engine.dispose()


async def test_a_count_is_imported_from_csv_every_row_or_none(databases, tmp_path: Path):
    url = await databases.create()
    assert run("migrate", database_url=url).returncode == 0
    count_id = await _count_with_stock(url)
    untouched = {"BOLT-1": (None, None), "NUT-1": (None, None)}

    bad = tmp_path / "bad.csv"
    bad.write_text("sku,counted\nbolt-1,8\nNOPE-9,1\nGLUE-1,2\nNUT-1,-3\nNUT-1,x\n")
    refused = run("count", "import", str(count_id), str(bad), database_url=url)
    assert refused.returncode == 1, refused.stdout
    assert "nothing was recorded" in refused.stderr
    assert "row 3, sku: no product has SKU NOPE-9" not in refused.stderr  # rows checked first
    assert "row 5, counted" in refused.stderr
    assert "row 6, sku: NUT-1 is already on row 5" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert await _lines(url) == untouched

    unknown = tmp_path / "unknown.csv"
    unknown.write_text("sku,counted\nBOLT-1,8\nNOPE-9,1\nGLUE-1,2\n")
    refused = run("count", "import", str(count_id), str(unknown), database_url=url)
    assert refused.returncode == 1
    assert "row 3, sku: no product has SKU NOPE-9" in refused.stderr
    assert f"row 4, sku: GLUE-1 is not in count {count_id}" in refused.stderr
    assert await _lines(url) == untouched

    headless = tmp_path / "headless.csv"
    headless.write_text("BOLT-1,8\n")
    refused = run("count", "import", str(count_id), str(headless), database_url=url)
    assert refused.returncode == 1
    assert "missing columns: sku, counted" in refused.stderr

    good = tmp_path / "good.csv"
    good.write_text("\ufeffSKU,Counted,shelf\nbolt-1,8,A1\n")
    imported = run("count", "import", str(count_id), str(good), database_url=url)
    assert imported.returncode == 0, imported.stderr
    assert (
        f"recorded 1 lines in count {count_id}: 1 differ from the ledger (net -2); "
        "1 lines not counted yet" in imported.stdout
    )
    assert await _lines(url) == {"BOLT-1": (8, -2), "NUT-1": (None, None)}

    missing = run("count", "import", "999", str(good), database_url=url)
    assert missing.returncode == 1
    assert "count 999 does not exist" in missing.stderr

"""The ``inventory`` command, run as a user would run it: a real process."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, insert, select, update

from inventory import migrations
from inventory.config import Settings
from inventory.db import create_engine
from inventory.demo import DEMO_PRODUCT_COUNT
from inventory.models import (
    Category,
    Product,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
    User,
    Warehouse,
)
from inventory.models.columns import utcnow
from inventory.vendor import asset_url
from tests.processes import run, serving


async def _count(url: str, model: type) -> int:
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as connection:
            return (await connection.scalar(select(func.count()).select_from(model))) or 0
    finally:
        await engine.dispose()


async def test_migrate_then_seed_demo_once(databases):
    url = await databases.create()
    migrated = run("migrate", database_url=url)
    assert migrated.returncode == 0, migrated.stderr
    assert f"revision {migrations.head_revision()}" in migrated.stdout

    seeded = run("seed", "--demo", database_url=url)
    assert seeded.returncode == 0, seeded.stderr
    assert f"loaded {DEMO_PRODUCT_COUNT} demo products and 4 demo users" in seeded.stdout
    assert await _count(url, User) == 4
    assert await _count(url, Product) == DEMO_PRODUCT_COUNT >= 200
    assert await _count(url, Category) >= 5
    assert await _count(url, Warehouse) >= 2

    again = run("seed", "--demo", database_url=url)
    assert again.returncode == 0  # `make run` goes on to serve
    assert "demo data not loaded: the database is not empty" in again.stdout
    assert f"users: 4, products: {DEMO_PRODUCT_COUNT}" in again.stdout
    assert await _count(url, User) == 4
    assert await _count(url, Product) == DEMO_PRODUCT_COUNT


async def test_seed_adds_no_demo_user_beside_real_ones(databases):
    url = await databases.create()
    assert run("migrate", database_url=url).returncode == 0
    made = run(
        "create-user",
        "owner@example.com",
        "--role",
        "admin",
        "--password",
        "owner-password-1",
        database_url=url,
    )
    assert made.returncode == 0, made.stderr
    seeded = run("seed", "--demo", database_url=url)
    assert seeded.returncode == 0, seeded.stderr
    assert "demo data not loaded: the database is not empty (users: 1)" in seeded.stdout
    assert await _count(url, User) == 1
    assert await _count(url, Product) == 0


async def test_seed_adds_no_demo_data_to_a_catalogue_without_users(databases):
    url = await databases.create()
    engine = create_engine(Settings(database_url=url))
    try:
        await migrations.upgrade(engine)
        async with engine.begin() as connection:
            await connection.execute(insert(Warehouse).values(code="REAL", name="Real depot"))
    finally:
        await engine.dispose()
    seeded = run("seed", "--demo", database_url=url)
    assert seeded.returncode == 0, seeded.stderr
    assert "not empty (warehouses: 1)" in seeded.stdout
    assert await _count(url, User) == 0
    assert await _count(url, Warehouse) == 1


async def test_seed_refuses_an_unmigrated_database(databases):
    result = run("seed", "--demo", database_url=await databases.create())
    assert result.returncode == 1
    assert "inventory migrate" in result.stderr


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "1"]])
def test_unreachable_database_exits_with_one_clear_line(command):
    result = run(
        *command,
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/inventory",
        INVENTORY_DB_WAIT_SECONDS="1",
    )
    assert result.returncode == 1
    assert "unreachable after 1s" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_invalid_configuration_is_reported_without_traceback():
    result = run(
        "migrate",
        database_url="sqlite+aiosqlite:///unused.db",
        INVENTORY_ENV="production",
    )
    assert result.returncode == 1
    assert "INVENTORY_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["migrate"], ["serve"]])
def test_invalid_configuration_in_production_is_one_json_line_without_the_values(command):
    result = run(
        *command,
        database_url="postgresql+asyncpg://inventory:db-password-77@127.0.0.1:1/x",
        INVENTORY_ENV="production",
        INVENTORY_SECRET_KEY="too-short-key-55",
        INVENTORY_ADMIN_PASSWORD="admin-password-66",
    )
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    record = json.loads(line)
    assert record["level"] == "ERROR"
    assert record["message"] == (
        "invalid configuration: INVENTORY_SECRET_KEY must be at least 32 bytes (HS256)"
    )
    for value in ("too-short-key-55", "admin-password-66", "db-password-77"):
        assert value not in result.stderr


def test_seed_without_demo_flag_is_a_usage_error(tmp_path):
    result = run("seed", database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    assert result.returncode == 2


def test_serve_migrates_and_serves_docs_and_api(tmp_path):
    with serving(
        INVENTORY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/served.db",
        INVENTORY_ADMIN_EMAIL="Boss@Example.com",
        INVENTORY_ADMIN_PASSWORD="first-admin-password",
    ) as server:
        base = server.url
        assert httpx.get(f"{base}/ready").json()["status"] == "ready"
        docs = httpx.get(f"{base}/docs")
        assert docs.status_code == 200
        assert "swagger-ui-bundle.js" in docs.text
        assert "cdn" not in docs.text.lower()
        bundle = httpx.get(base + asset_url("swagger-ui-dist", "swagger-ui-bundle.js"))
        assert bundle.status_code == 200
        assert "/api/v1/products" in httpx.get(f"{base}/openapi.json").json()["paths"]
        assert httpx.get(f"{base}/api/v1/products").status_code == 401
        login = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": "boss@example.com", "password": "first-admin-password"},
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        me = httpx.get(f"{base}/api/v1/users/me", headers=headers).json()
        assert me["email"] == "boss@example.com"
        assert me["role"] == "admin"
        products = httpx.get(f"{base}/api/v1/products", headers=headers).json()
        assert products == {"items": [], "next_cursor": None}


async def test_check_ledger_reports_levels_that_disagree_with_the_ledger(databases):
    url = await databases.create()
    assert run("migrate", database_url=url).returncode == 0
    assert run("seed", "--demo", database_url=url).returncode == 0
    consistent = run("check-ledger", database_url=url)
    assert consistent.returncode == 0, consistent.stdout + consistent.stderr
    assert "ledger consistent" in consistent.stdout

    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.begin() as connection:
            row = (
                await connection.execute(
                    select(StockLevel.product_id, StockLevel.warehouse_id, StockLevel.quantity)
                    .order_by(StockLevel.id)
                    .limit(1)
                )
            ).one()
            await connection.execute(
                update(StockLevel)
                .where(
                    StockLevel.product_id == row.product_id,
                    StockLevel.warehouse_id == row.warehouse_id,
                )
                .values(quantity=row.quantity + 7)
            )
    finally:
        await engine.dispose()
    broken = run("check-ledger", database_url=url)
    assert broken.returncode == 1
    assert "ledger differences" in broken.stdout
    cells = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in broken.stdout.splitlines()
        if line.count("│") == 5
    ]
    expected = [
        str(row.product_id),
        str(row.warehouse_id),
        str(row.quantity + 7),
        str(row.quantity),
    ]
    assert cells == [expected]


async def test_export_then_import_round_trip_from_the_command_line(databases, tmp_path):
    url = await databases.create()
    assert run("migrate", database_url=url).returncode == 0
    assert run("seed", "--demo", database_url=url).returncode == 0
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    exported = run("export", "products", "-o", str(first), database_url=url)
    assert exported.returncode == 0, exported.stderr
    assert "wrote products to" in exported.stdout
    assert first.read_text().count("\n") >= DEMO_PRODUCT_COUNT + 1
    imported = run("import", "products", str(first), database_url=url)
    assert imported.returncode == 0, imported.stderr
    assert f"imported {DEMO_PRODUCT_COUNT} rows" in imported.stdout
    assert run("export", "products", "-o", str(second), database_url=url).returncode == 0
    assert second.read_bytes() == first.read_bytes()
    to_stdout = run("export", "stock", database_url=url)
    assert to_stdout.stdout.splitlines()[0] == "sku,warehouse,quantity,reorder_level"
    orders = run("export", "purchase-orders", database_url=url)
    assert orders.returncode == 0, orders.stderr
    assert orders.stdout.splitlines()[0] == (
        "number,status,supplier,warehouse,reference,expected_on,line_id,sku,quantity,unit_cost,"
        "received"
    )


async def test_a_bad_import_file_exits_1_listing_its_rows(databases, tmp_path):
    url = await databases.create()
    assert run("migrate", database_url=url).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "sku,name,description,category,supplier,unit_price,reorder_level,is_active\n"
        "A B,x,,,,-1,0,true\n"
    )
    result = run("import", "products", str(bad), database_url=url)
    assert result.returncode == 1
    assert "row 2, sku" in result.stderr
    assert "row 2, unit_price" in result.stderr
    assert "nothing applied" in result.stderr
    assert await _count(url, Product) == 0
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a;b\n1;2\n")
    refused = run("import", "products", str(wrong), database_url=url)
    assert refused.returncode == 1
    assert "missing columns" in refused.stderr


async def test_reservations_sweep_marks_expired_holds_once_and_says_how_many(databases):
    url = await databases.create()
    assert run("migrate", database_url=url).returncode == 0
    assert run("seed", "--demo", database_url=url).returncode == 0
    engine = create_engine(Settings(database_url=url))
    now = utcnow()
    try:
        async with engine.begin() as connection:
            level = (
                await connection.execute(
                    select(StockLevel.product_id, StockLevel.warehouse_id)
                    .where(StockLevel.quantity > 0)
                    .order_by(StockLevel.id)
                    .limit(1)
                )
            ).one()
            made = {}
            for name, expires_at in (
                ("past", now - timedelta(minutes=5)),
                ("live", now + timedelta(hours=1)),
            ):
                made[name] = await connection.scalar(
                    insert(Reservation)
                    .values(status=ReservationStatus.held, expires_at=expires_at, created_at=now)
                    .returning(Reservation.id)
                )
                await connection.execute(
                    insert(ReservationLine).values(
                        reservation_id=made[name],
                        product_id=level.product_id,
                        warehouse_id=level.warehouse_id,
                        quantity=1,
                        held_until=expires_at,
                    )
                )

        swept = run("reservations", "sweep", database_url=url)
        assert swept.returncode == 0, swept.stderr
        assert "marked 1 reservations expired" in swept.stdout
        again = run("reservations", "sweep", database_url=url)
        assert again.returncode == 0, again.stderr
        assert "marked 0 reservations expired" in again.stdout
        async with engine.connect() as connection:
            statuses = dict(
                (await connection.execute(select(Reservation.id, Reservation.status))).all()
            )
        assert statuses == {
            made["past"]: ReservationStatus.expired,
            made["live"]: ReservationStatus.held,
        }
    finally:
        await engine.dispose()

"""The ``inventory`` command: serve, migrate and seed the service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, TypeVar

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory import demo, migrations
from inventory.config import Environment, Settings, load_settings
from inventory.db import (
    DatabaseUnavailable,
    create_engine,
    create_sessionmaker,
    unit_of_work,
    wait_for_database,
)
from inventory.errors import Conflict
from inventory.models import Role
from inventory.stock.service import LedgerDiscrepancy, find_ledger_discrepancies
from inventory.users import service as users
from inventory.users.schemas import UserCreate

app = typer.Typer(help="Inventory service command line.", no_args_is_help=True)
err = Console(stderr=True)
out = Console()

T = TypeVar("T")


def _run(work: Callable[[Settings, AsyncEngine], Awaitable[T]]) -> T:
    """Run ``work`` against a database that is up; exit 1 with one clear line otherwise."""
    try:
        settings = load_settings()
    except ValueError as exc:
        err.print(f"[red]invalid configuration:[/red] {exc}")
        raise typer.Exit(1) from None

    async def main() -> T:
        engine = create_engine(settings)
        try:
            await wait_for_database(engine, settings.db_wait_seconds)
            return await work(settings, engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except DatabaseUnavailable as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


async def _migrate(settings: Settings, engine: AsyncEngine) -> str | None:
    await migrations.upgrade(engine)
    return await migrations.current_revision(engine)


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the latest revision (alembic upgrade head)."""
    revision = _run(_migrate)
    out.print(f"database is at revision {revision}")


@app.command()
def seed(
    demo_data: Annotated[
        bool, typer.Option("--demo", help="Load the demo catalogue into an empty database.")
    ] = False,
) -> None:
    """Load data into the database."""
    if not demo_data:
        err.print("nothing to seed: pass --demo")
        raise typer.Exit(2)

    async def work(settings: Settings, engine: AsyncEngine) -> None:
        if settings.env is Environment.production:
            err.print(
                "[red]error:[/red] demo data (with its published passwords) is not for production"
            )
            raise typer.Exit(1)
        await _require_migrated(engine)
        async with unit_of_work(create_sessionmaker(engine)) as uow:
            if made := await demo.seed_demo_users(uow.session):
                out.print(f"created {made} demo users (one per role; see README)")
            existing = await demo.product_count(uow.session)
            if existing:
                out.print(f"database already has {existing} products; demo catalogue not loaded")
                return
            with Progress(
                TextColumn("loading demo catalogue"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                disable=not err.is_terminal,
            ) as progress:
                task = progress.add_task("products", total=demo.DEMO_PRODUCT_COUNT)
                count = await demo.seed_demo(uow.session, partial(progress.advance, task))
        out.print(f"loaded {count} demo products")

    _run(work)


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Argument(help="Sign-in email (case-insensitive).")],
    role: Annotated[Role, typer.Option(help="viewer, clerk, manager or admin.")],
    password: Annotated[
        str | None, typer.Option(help="Prompted for (hidden) when left out.", show_default=False)
    ] = None,
    full_name: Annotated[str | None, typer.Option(help="Display name.")] = None,
) -> None:
    """Create a user with a role."""
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        data = UserCreate.model_validate(
            {"email": email, "password": password, "role": role, "full_name": full_name}
        )
    except ValidationError as exc:
        for error in exc.errors(include_input=False):
            err.print(f"[red]invalid {'.'.join(map(str, error['loc']))}:[/red] {error['msg']}")
        raise typer.Exit(2) from None

    async def work(settings: Settings, engine: AsyncEngine) -> int:
        await _require_migrated(engine)
        async with unit_of_work(create_sessionmaker(engine)) as uow:
            return (await users.create_user(uow.session, data)).id

    try:
        user_id = _run(work)
    except Conflict as exc:
        err.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None
    out.print(f"created {role.value} {data.email} (id {user_id})")


@app.command("check-ledger")
def check_ledger() -> None:
    """Verify that every stock level equals the sum of its movements; exit 1 if not."""

    async def work(settings: Settings, engine: AsyncEngine) -> list[LedgerDiscrepancy]:
        await _require_migrated(engine)
        async with unit_of_work(create_sessionmaker(engine)) as uow:
            return await find_ledger_discrepancies(uow.session)

    differences = _run(work)
    if not differences:
        out.print("ledger consistent: every level equals the sum of its movements")
        return
    table = Table("product", "warehouse", "level", "sum of movements", title="ledger differences")
    for d in differences:
        table.add_row(*(str(v) for v in (d.product_id, d.warehouse_id, d.level, d.ledger_sum)))
    out.print(table)
    raise typer.Exit(1)


async def _require_migrated(engine: AsyncEngine) -> None:
    if await migrations.current_revision(engine) != migrations.head_revision():
        err.print("[red]error:[/red] the database is not migrated; run `inventory migrate`")
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Upgrade the schema before serving.")
    ] = True,
) -> None:
    """Serve the API; waits for the database and migrates it first."""
    if migrate_first:
        _run(_migrate)
    uvicorn.run(
        "inventory.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        proxy_headers=True,
    )

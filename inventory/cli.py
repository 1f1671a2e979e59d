"""The ``inventory`` command: serve, migrate and seed the service."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from inventory import demo, migrations
from inventory.config import Environment, Settings, describe_invalid, load_settings
from inventory.counts import imports as count_imports
from inventory.csvio import exports
from inventory.csvio.jobs import records, runs
from inventory.db import Database
from inventory.errors import Conflict, DomainError
from inventory.logs import configure_startup_logging, logging_config, writes_json
from inventory.models import ImportJob, Role
from inventory.orders.filters import PurchaseOrderFilter, SalesOrderFilter
from inventory.products.filters import ProductFilter
from inventory.readiness import DatabaseUnavailable, wait_for_database
from inventory.serving import BACKLOG, KEEP_ALIVE_SECONDS, raise_open_files_limit
from inventory.standalone import standalone_database
from inventory.stock.filters import LedgerFilter, LevelFilter
from inventory.stock.service import LedgerDiscrepancy, find_ledger_discrepancies
from inventory.streams.abort import HttpProtocol
from inventory.users import service as users
from inventory.users.schemas import UserCreate
from inventory.worker_count import share_nothing_locally

app = typer.Typer(help="Inventory service command line.", no_args_is_help=True)
err = Console(stderr=True)
out = Console()
logger = logging.getLogger("inventory.cli")

T = TypeVar("T")


def _settings() -> Settings:
    """The settings, or exit 1 with one clear line saying what is wrong with them."""
    try:
        return load_settings()
    except ValueError as exc:
        _fail(None, "invalid configuration", describe_invalid(exc))


def _fail(settings: Settings | None, label: str, message: str) -> NoReturn:
    """Exit 1 with one line: a JSON record in production, red text elsewhere."""
    if writes_json(settings):
        configure_startup_logging(settings)
        logger.error("%s: %s", label, message)
    else:
        err.print(f"[red]{label}:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(1)


def _say(settings: Settings, message: str) -> None:
    """A command's result: a JSON record in production, a plain line elsewhere."""
    if writes_json(settings):
        logger.info(message)
    else:
        out.print(message, soft_wrap=True)


def _run(work: Callable[[Settings, Database], Awaitable[T]]) -> T:
    """Run ``work`` against a database that is up; exit 1 with one clear line otherwise."""
    settings = _settings()
    if writes_json(settings):
        configure_startup_logging(settings)  # the migrations' own lines too

    async def main() -> T:
        async with standalone_database(settings) as database:
            await wait_for_database(database.engine, settings.db_wait_seconds)
            return await work(settings, database)

    try:
        return asyncio.run(main())
    except DatabaseUnavailable as exc:
        _fail(settings, "error", str(exc))


async def _migrate(settings: Settings, database: Database) -> str | None:
    await migrations.upgrade(database.engine)
    return await migrations.current_revision(database.engine)


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the latest revision (alembic upgrade head)."""
    revision = _run(_migrate)
    _say(_settings(), f"database is at revision {revision}")


@app.command()
def seed(
    demo_data: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Load the demo catalogue and users, only into an empty database.",
        ),
    ] = False,
) -> None:
    """Load data into the database."""
    if not demo_data:
        err.print("nothing to seed: pass --demo")
        raise typer.Exit(2)

    async def work(settings: Settings, database: Database) -> demo.DemoOutcome:
        if settings.env is Environment.production:
            _fail(
                settings, "error", "demo data (with its published passwords) is not for production"
            )
        await _require_migrated(database)
        async with database.unit_of_work(write=True) as uow:
            with Progress(
                TextColumn("loading demo catalogue"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                disable=not err.is_terminal,
                transient=True,  # gone when done, or when nothing was loaded
            ) as progress:
                task = progress.add_task("products", total=demo.DEMO_PRODUCT_COUNT)
                return await demo.seed_into_empty(uow.session, partial(progress.advance, task))

    outcome = _run(work)
    if outcome.found:
        held = ", ".join(f"{kind}: {count}" for kind, count in outcome.found.items())
        out.print(
            f"demo data not loaded: the database is not empty ({held}); "
            "demo data loads only into an empty database",
            soft_wrap=True,
        )
        return
    out.print(
        f"loaded {outcome.products} demo products and {outcome.users} demo users "
        "(one per role, with the passwords in the README)",
        soft_wrap=True,
    )


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

    async def work(settings: Settings, database: Database) -> int:
        await _require_migrated(database)
        async with database.unit_of_work(write=True) as uow:
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

    async def work(settings: Settings, database: Database) -> list[LedgerDiscrepancy]:
        await _require_migrated(database)
        async with database.unit_of_work(write=True) as uow:
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


reservations_app = typer.Typer(help="Reservations of stock.", no_args_is_help=True)
app.add_typer(reservations_app, name="reservations")


@reservations_app.command("sweep")
def sweep_reservations() -> None:
    """Mark holds whose expiry has passed `expired` (what the periodic job does), once."""

    # Here, not at the top: the job bodies' module loads Celery, which no other command needs.
    from inventory.jobs import maintenance

    async def work(settings: Settings, database: Database) -> int:
        await _require_migrated(database)
        return await maintenance.expire_reservations(database)

    marked = _run(work)
    _say(_settings(), f"marked {marked} reservations expired")


import_app = typer.Typer(help="Import CSV files.", no_args_is_help=True)
app.add_typer(import_app, name="import")


def _progress(*, bytes_: bool = False) -> Progress:
    """A progress bar on a terminal; nothing otherwise (the summary line still prints)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn() if bytes_ else MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )


@import_app.command("products")
def import_products(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    dry_run: Annotated[bool, typer.Option(help="Validate only; change nothing.")] = False,
) -> None:
    """Upsert products from a CSV file by SKU: every row, or none if any is invalid."""
    content = file.read_bytes()

    async def work(settings: Settings, database: Database) -> tuple[runs.Outcome, int]:
        await _require_migrated(database)
        async with database.unit_of_work(write=True) as uow:
            job = await records.create_product_import(
                uow.session, None, file.name, content, dry_run
            )
        with _progress() as progress:
            task = progress.add_task("validating rows", total=None)

            def report(done: int, total: int) -> None:
                if total:
                    progress.update(task, description="applied", completed=total, total=total)
                else:
                    progress.update(task, completed=done)

            outcome = await runs.run_import_job(database, job.id, on_progress=report)
        return outcome, job.id

    try:
        outcome, job_id = _run(work)
    except DomainError as exc:
        err.print(f"[red]refused:[/red] {exc.detail}")
        for error in exc.extra.get("errors", []):
            if error["msg"] != exc.detail:
                err.print(f"  {error['msg']}")
        raise typer.Exit(1) from None
    _report_job(job_id, outcome)


def _report_job(job_id: int, outcome: runs.Outcome) -> None:
    async def fetch(settings: Settings, database: Database) -> ImportJob:
        async with database.unit_of_work(write=False) as uow:
            return await records.get_job(uow.session, job_id)

    job = _run(fetch)
    if outcome is runs.Outcome.succeeded:
        verb = "checked" if job.dry_run else "imported"
        out.print(f"{verb} {job.rows_total} rows (job {job.id})")
        return
    errors = records.job_errors(job)
    err.print(f"[red]import failed[/red] (job {job.id}): {len(errors)} problems, nothing applied")
    for error in errors[:50]:
        where = f"row {error['row']}" if error["row"] else "file"
        column = f", {error['column']}" if error["column"] else ""
        err.print(f"  {where}{column}: {error['message']}")
    if len(errors) > 50:
        err.print(f"  … and {len(errors) - 50} more")
    raise typer.Exit(1)


count_app = typer.Typer(help="Stock counts (stocktakes).", no_args_is_help=True)
app.add_typer(count_app, name="count")


@count_app.command("import")
def import_count(
    count_id: Annotated[int, typer.Argument(min=1, help="The open count to record into.")],
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="CSV with a header: sku,counted."
        ),
    ],
) -> None:
    """Record counted quantities from a CSV file (sku,counted) into an open count.

    Each row is recorded as PUT /counts/{id}/lines/{product} records a line,
    counted as of now; a SKU counted before is counted again. Every row or none:
    an unknown SKU, a product not in the count or a bad number refuses the file,
    with the row numbers (the header is row 1). Finish the count afterwards.
    """
    content = file.read_bytes()

    async def work(settings: Settings, database: Database) -> count_imports.CountImport:
        await _require_migrated(database)
        async with database.unit_of_work(write=True) as uow:
            with _progress() as progress:
                task = progress.add_task("recording lines", total=None)

                def report(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                return await count_imports.import_count(uow.session, count_id, content, report)

    try:
        summary = _run(work)
    except DomainError as exc:
        err.print(f"[red]refused:[/red] {escape(exc.detail)}", soft_wrap=True)
        for error in exc.extra.get("errors", []):
            if error["msg"] != exc.detail:
                err.print(f"  {escape(error['msg'])}", soft_wrap=True)
        raise typer.Exit(1) from None
    out.print(
        f"recorded {summary.recorded} lines in count {summary.count_id}: "
        f"{summary.differing} differ from the ledger (net {summary.net:+d}); "
        f"{summary.uncounted} lines not counted yet",
        soft_wrap=True,
    )


class ExportKind(StrEnum):
    products = "products"
    stock = "stock"
    movements = "movements"
    purchase_orders = "purchase-orders"
    sales_orders = "sales-orders"


@app.command()
def export(
    kind: Annotated[ExportKind, typer.Argument(help="What to export.")],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="File to write; standard output if left out."),
    ] = None,
) -> None:
    """Write products, stock levels, the ledger or orders as CSV, streamed in batches."""
    export = {
        ExportKind.products: lambda: exports.products_export(ProductFilter()),
        ExportKind.stock: lambda: exports.stock_export(LevelFilter()),
        ExportKind.movements: lambda: exports.movements_export(LedgerFilter()),
        ExportKind.purchase_orders: lambda: exports.purchase_orders_export(PurchaseOrderFilter()),
        ExportKind.sales_orders: lambda: exports.sales_orders_export(SalesOrderFilter()),
    }[kind]()

    async def work(settings: Settings, database: Database) -> int:
        await _require_migrated(database)
        written = 0
        target = output.open("wb") if output else sys.stdout.buffer
        try:
            with _progress(bytes_=True) as progress:
                task = progress.add_task(f"exporting {kind.value}", total=None)
                async for chunk in exports.stream_csv(database, export):
                    target.write(chunk)
                    written += len(chunk)
                    progress.advance(task, len(chunk))
        finally:
            if output:
                target.close()
        return written

    size = _run(work)
    if output:
        out.print(f"wrote {kind.value} to {output} ({size} bytes)")


async def _require_migrated(database: Database) -> None:
    if await migrations.current_revision(database.engine) != migrations.head_revision():
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
    settings = _settings()
    # The service's format from the first line (JSON in production), migrations included.
    configure_startup_logging(settings)
    if migrate_first:
        _run(_migrate)
    if not reload and (note := share_nothing_locally(settings, workers)):
        logger.warning(note)
    raise_open_files_limit()  # the workers inherit it
    uvicorn.run(
        "inventory.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        proxy_headers=True,
        http=HttpProtocol,  # httptools, able to abort a stalled download (inventory.streams)
        backlog=BACKLOG,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # A long export must not hold a shutdown open: cancel it after 10 s.
        timeout_graceful_shutdown=10,
        # One format for every line (JSON in production); the app logs each request itself.
        log_config=logging_config(settings),
        access_log=False,
    )


# Everything after the command name goes to Celery's own command, --help included.
CELERY_PASSTHROUGH = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": [],
}


def _celery(argv: list[str]) -> None:
    """Run Celery's own ``celery worker|beat`` with this service's app."""
    settings = _settings()
    if not settings.broker_url:
        err.print(
            "[red]error:[/red] INVENTORY_BROKER_URL is not set, so jobs run inside the API "
            "process and there is nothing for a Celery process to do"
        )
        raise typer.Exit(2)
    if (pool := _pool(argv)) and pool not in ("prefork", "solo"):
        # Jobs run on one event loop per process; threads would share it.
        err.print(f"[red]error:[/red] --pool {pool}: use prefork (the default) or solo")
        raise typer.Exit(2)
    if not any(arg in ("-l", "--loglevel") or arg.startswith("--loglevel=") for arg in argv):
        argv = [*argv, "--loglevel=INFO"]
    from inventory.jobs.tasks import app as celery_app

    raise typer.Exit(celery_app.start([*argv]) or 0)


def _pool(argv: list[str]) -> str | None:
    for index, arg in enumerate(argv):
        if arg in ("-P", "--pool") and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--pool="):
            return arg.partition("=")[2]
        if arg.startswith("-P") and len(arg) > 2:
            return arg[2:]
    return None


@app.command(context_settings=CELERY_PASSTHROUGH)
def worker(ctx: typer.Context) -> None:
    """Run a Celery worker for imports and maintenance (options go to `celery worker`)."""
    _celery(["worker", *ctx.args])


@app.command(context_settings=CELERY_PASSTHROUGH)
def beat(ctx: typer.Context) -> None:
    """Run Celery beat, which sends the periodic maintenance (run exactly one)."""
    _celery(["beat", *ctx.args])

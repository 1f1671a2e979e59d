"""REST routes for CSV: product imports (as jobs) and streamed exports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from inventory.config import Settings
from inventory.csvio import exports
from inventory.csvio.jobs import records
from inventory.csvio.jobs.submit import submit_product_import
from inventory.csvio.runner import JobRunnerDep
from inventory.csvio.upload import read_file_field
from inventory.db import Database
from inventory.deps import (
    DatabaseDep,
    DownloadSlot,
    EntryId,
    ManagerUser,
    Release,
    SettingsDep,
    UnitOfWorkDep,
    require_role,
)
from inventory.models import JobStatus, Role
from inventory.orders.params import PurchaseOrderFilterQuery, SalesOrderFilterQuery
from inventory.problems import problem_responses
from inventory.products.params import ProductFilterQuery
from inventory.stock.params import LedgerFilterQuery, LevelFilterQuery
from inventory.streams.responses import GuardedStream

router = APIRouter(tags=["csv"], dependencies=[require_role(Role.viewer)])

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


class JobAccepted(BaseModel):
    id: int
    status: JobStatus


class JobError(BaseModel):
    row: int | None
    column: str | None
    message: str


class JobRead(BaseModel):
    id: int
    status: JobStatus
    dry_run: bool
    filename: str | None
    rows_total: int
    rows_done: int
    errors: list[JobError]
    created_at: datetime
    finished_at: datetime | None
    attempts: int = Field(description="Runs that took the job (more than 1 after a worker died)")
    worker: str | None = Field(description="host:pid of the process that ran it last")


@router.post(
    "/imports/products",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    summary="Import products from CSV (upsert by SKU, all or nothing)",
    openapi_extra=UPLOAD_BODY,
    responses=problem_responses(413, 415, 422, 503),
)
async def import_products(
    request: Request,
    user: ManagerUser,
    database: DatabaseDep,
    runner: JobRunnerDep,
    settings: SettingsDep,
    response: Response,
    dry_run: Annotated[bool, Query(description="Validate and report; change nothing")] = False,
) -> JobAccepted:
    # The file is read before any transaction: a slow upload holds no database lock.
    filename, content = await read_file_field(request, "file", settings.max_upload_bytes)
    job = await submit_product_import(database, runner, user.id, filename, content, dry_run)
    response.headers["Location"] = f"/api/v1/imports/{job.id}"
    return JobAccepted(id=job.id, status=job.status)


@router.get(
    "/imports/{job_id}",
    response_model=JobRead,
    summary="An import job's progress and errors",
    dependencies=[require_role(Role.manager)],
    responses=problem_responses(404),
)
async def read_import(job_id: EntryId, uow: UnitOfWorkDep) -> JobRead:
    job = await records.get_job(uow.session, job_id)
    return JobRead(
        id=job.id,
        status=job.status,
        dry_run=job.dry_run,
        filename=job.filename,
        rows_total=job.rows_total,
        rows_done=job.rows_done,
        errors=[JobError(**e) for e in records.job_errors(job)],
        created_at=job.created_at,
        finished_at=job.finished_at,
        attempts=job.attempts,
        worker=job.worker,
    )


def _csv(
    database: Database, settings: Settings, release: Release, export: exports.Export
) -> StreamingResponse:
    return GuardedStream(
        exports.stream_csv(database, export),
        idle_seconds=settings.stream_idle_seconds,
        before_end=release,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{export.name}.csv"'},
    )


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {}},
        "description": "The CSV file, streamed. A client that reads nothing for "
        "`INVENTORY_STREAM_IDLE_SECONDS` has its connection aborted (no clean end of the "
        "body, so a cut-off file never looks complete).",
    },
    **problem_responses(422, 429),
}


@router.get(
    "/exports/products.csv",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
    summary="Export products as CSV",
)
async def export_products(
    database: DatabaseDep, settings: SettingsDep, release: DownloadSlot, flt: ProductFilterQuery
) -> StreamingResponse:
    return _csv(database, settings, release, exports.products_export(flt))


@router.get(
    "/exports/stock.csv",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
    summary="Export stock levels as CSV",
)
async def export_stock(
    database: DatabaseDep, settings: SettingsDep, release: DownloadSlot, flt: LevelFilterQuery
) -> StreamingResponse:
    return _csv(database, settings, release, exports.stock_export(flt))


@router.get(
    "/exports/movements.csv",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
    summary="Export the ledger as CSV",
)
async def export_movements(
    database: DatabaseDep, settings: SettingsDep, release: DownloadSlot, flt: LedgerFilterQuery
) -> StreamingResponse:
    return _csv(database, settings, release, exports.movements_export(flt))


@router.get(
    "/exports/purchase-orders.csv",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
    summary="Export purchase orders as CSV, one row per line",
)
async def export_purchase_orders(
    database: DatabaseDep,
    settings: SettingsDep,
    release: DownloadSlot,
    flt: PurchaseOrderFilterQuery,
) -> StreamingResponse:
    return _csv(database, settings, release, exports.purchase_orders_export(flt))


@router.get(
    "/exports/sales-orders.csv",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
    summary="Export sales orders as CSV, one row per line",
)
async def export_sales_orders(
    database: DatabaseDep, settings: SettingsDep, release: DownloadSlot, flt: SalesOrderFilterQuery
) -> StreamingResponse:
    return _csv(database, settings, release, exports.sales_orders_export(flt))

"""Product imports: all or nothing, every bad row listed, every bad file refused clearly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.csvio.jobs import sweeps
from inventory.models import ImportJob, JobStatus, Role
from inventory.models.columns import utcnow
from tests.helpers import API, assert_problem, collect_pages, create, create_product, error_locs

HEADER = "sku,name,description,category,supplier,unit_price,reorder_level,is_active\n"
IMPORTS = f"{API}/imports/products"


async def upload(
    client: httpx.AsyncClient, content: bytes, *, dry_run: bool = False, name: str = "p.csv"
) -> httpx.Response:
    params = {"dry_run": "true"} if dry_run else {}
    return await client.post(IMPORTS, params=params, files={"file": (name, content, "text/csv")})


async def finished(client: httpx.AsyncClient, response: httpx.Response) -> dict[str, Any]:
    """The job behind a 202, once it has finished."""
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"
    assert response.headers["location"] == f"{API}/imports/{accepted['id']}"
    for _ in range(200):
        job = (await client.get(f"{API}/imports/{accepted['id']}")).json()
        if job["status"] in ("succeeded", "failed"):
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    pytest.fail(f"job {accepted['id']} did not finish: {job}")


async def catalogue(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return await collect_pages(client, f"{API}/products", limit=200)


GOOD = (
    HEADER
    + "HAM-1,Claw hammer,Steel,Tools,Acme,12.50,5,true\n"
    + "saw-2,Hacksaw,,Tools,,8,0,false\n"
    + 'GLV-3,Gloves,"Nitrile, blue",Safety,Acme,3.99,,\n'
).encode()


async def test_import_creates_products_categories_and_suppliers(client):
    job = await finished(client, await upload(client, GOOD))
    assert job["status"] == "succeeded", job
    assert (job["rows_total"], job["rows_done"], job["errors"]) == (3, 3, [])
    assert job["filename"] == "p.csv"
    products = {p["sku"]: p for p in await catalogue(client)}
    assert set(products) == {"HAM-1", "SAW-2", "GLV-3"}
    assert products["GLV-3"]["description"] == "Nitrile, blue"
    assert products["GLV-3"]["reorder_level"] == 0
    assert products["GLV-3"]["is_active"] is True
    assert products["SAW-2"]["unit_price"] == "8.00"
    assert products["SAW-2"]["is_active"] is False
    assert products["SAW-2"]["supplier_id"] is None
    categories = {c["name"] for c in await collect_pages(client, f"{API}/categories")}
    assert categories == {"Tools", "Safety"}
    suppliers = [s["name"] for s in await collect_pages(client, f"{API}/suppliers")]
    assert suppliers == ["Acme"]


async def test_import_upserts_by_sku_and_leaves_unchanged_rows_alone(client):
    existing = await create(client, "/categories", name="Tools")
    same = await create_product(
        client,
        "SAW-2",
        name="Hacksaw",
        unit_price="8.00",
        category_id=existing["id"],
        is_active=False,
    )
    changed = await create_product(client, "HAM-1", name="Old name", unit_price="1.00")
    job = await finished(client, await upload(client, GOOD))
    assert job["status"] == "succeeded", job
    products = {p["sku"]: p for p in await catalogue(client)}
    assert products["HAM-1"]["id"] == changed["id"]
    assert products["HAM-1"]["name"] == "Claw hammer"
    assert products["HAM-1"]["version"] == 2
    assert products["SAW-2"]["version"] == same["version"]
    assert products["SAW-2"]["updated_at"] == same["updated_at"]


async def test_dry_run_validates_and_changes_nothing(client):
    job = await finished(client, await upload(client, GOOD, dry_run=True))
    assert job["status"] == "succeeded"
    assert job["dry_run"] is True
    assert job["rows_total"] == 3
    assert await catalogue(client) == []


async def test_a_bom_is_accepted(client):
    job = await finished(client, await upload(client, b"\xef\xbb\xbf" + GOOD))
    assert job["status"] == "succeeded", job


async def test_every_bad_row_is_listed_and_nothing_is_applied(client):
    await create_product(client, "KEEP-1", name="Untouched", unit_price="1.00")
    content = (
        HEADER
        + "OK-1,Fine,,Tools,,1.00,1,true\n"  # row 2: fine, but must not be applied
        + "BAD 1,Spaces in SKU,,,,1.00,0,true\n"  # row 3
        + "OK-2,Negative,,,,-5,0,true\n"  # row 4
        + "OK-3,Too many,,,,1,0,true,extra\n"  # row 5
        + "ok-1,Duplicate,,,,1,0,true\n"  # row 6: same SKU as row 2
        + "OK-4,,,,,1,0,maybe\n"  # row 7: no name, bad boolean
        + "OK-5,Price,,,,1.234,x,true\n"  # row 8
    ).encode()
    job = await finished(client, await upload(client, content))
    assert job["status"] == "failed"
    assert job["rows_total"] == 7
    found = {(e["row"], e["column"]) for e in job["errors"]}
    assert found == {
        (3, "sku"),
        (4, "unit_price"),
        (5, None),
        (6, "sku"),
        (7, "name"),
        (7, "is_active"),
        (8, "unit_price"),
        (8, "reorder_level"),
    }
    assert all(e["message"] for e in job["errors"])
    assert [p["sku"] for p in await catalogue(client)] == ["KEEP-1"]
    assert (await client.get(f"{API}/categories")).json()["items"] == []


@pytest.mark.parametrize(
    ("content", "status", "says"),
    [
        (b"", 422, "empty"),
        (HEADER.encode(), 422, "no rows"),
        (
            b"sku,name,description,category,supplier,unit_price,reorder_level\nA,B,,,,1,0\n",
            422,
            "missing columns: is_active",
        ),
        (
            HEADER.strip().encode() + b",colour\nA,B,,,,1,0,true,red\n",
            422,
            "unknown columns: colour",
        ),
        (HEADER.replace(",", ";").encode() + b"A;B;;;;1;0;true\n", 422, "missing columns"),
        (HEADER.encode() + b"A,Caf\xe9,,,,1,0,true\n", 415, "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 415, "binary"),
    ],
    ids=[
        "empty",
        "header-only",
        "missing-column",
        "unknown-column",
        "wrong-delimiter",
        "invalid-utf8",
        "binary",
    ],
)
async def test_bad_files_are_refused_at_upload(client, content, status, says):
    await create_product(client, "KEEP-1")
    response = await upload(client, content)
    body = assert_problem(response, status)
    assert says in (body["detail"] + str(body.get("errors", ""))), body
    assert [p["sku"] for p in await catalogue(client)] == ["KEEP-1"]


async def test_a_file_over_the_limit_is_413(client):
    big = HEADER.encode() + b"A,B,,,,1,0,true\n" * (25 * 1024 * 1024 // 16)
    assert len(big) > 25 * 1024 * 1024
    assert_problem(await upload(client, big), 413)
    assert await catalogue(client) == []


async def test_upload_must_be_multipart_with_a_file(client):
    assert_problem(await client.post(IMPORTS, json={"file": "x"}), 415)
    missing = await client.post(IMPORTS, files={"other": ("a.csv", GOOD, "text/csv")})
    assert error_locs(missing) == [["body", "file"]]


async def test_only_managers_import(anonymous, accounts):
    files = {"file": ("p.csv", GOOD, "text/csv")}
    clerk = await anonymous.post(IMPORTS, files=files, headers=accounts[Role.clerk].headers)
    assert_problem(clerk, 403)
    manager = await anonymous.post(IMPORTS, files=files, headers=accounts[Role.manager].headers)
    assert manager.status_code == 202


async def test_unknown_job_is_404(client):
    assert_problem(await client.get(f"{API}/imports/999999"), 404)


async def test_jobs_left_by_a_dead_process_are_failed(app, client, engine):
    long_ago = utcnow().replace(year=2020)
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        made = [
            ImportJob(
                kind="products",
                status=status,
                dry_run=False,
                heartbeat_at=heartbeat,
                created_at=heartbeat,
                content=b"x",
            )
            for status, heartbeat in (
                (JobStatus.queued, long_ago),
                (JobStatus.running, long_ago),
                (JobStatus.running, utcnow()),  # alive: heard from just now
            )
        ]
        session.add_all(made)
    async with AsyncSession(engine) as session, session.begin():
        assert await sweeps.fail_stale_jobs(session) == 2
    found = [(await client.get(f"{API}/imports/{job.id}")).json() for job in made]
    assert [job["status"] for job in found] == ["failed", "failed", "running"]
    assert "interrupted" in found[0]["errors"][0]["message"]


def _multipart(parts: list[tuple[str, bytes]], *, close: bool = True) -> tuple[bytes, str]:
    boundary = "testboundary123"
    body = b""
    for name, content in parts:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{name}.csv"\r\nContent-Type: text/csv\r\n\r\n'
            ).encode()
            + content
            + b"\r\n"
        )
    if close:
        body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


async def test_an_oversized_chunked_upload_is_stopped_while_streaming(client):
    body, content_type = _multipart([("file", HEADER.encode() + b"A,B,,,,1,0,true\n" * 1_700_000)])
    assert len(body) > 25 * 1024 * 1024

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streaming check only
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    response = await client.post(IMPORTS, content=chunks(), headers={"content-type": content_type})
    assert_problem(response, 413)
    assert await catalogue(client) == []


async def test_a_truncated_multipart_body_is_400(client):
    body, content_type = _multipart([("file", GOOD)], close=False)
    response = await client.post(IMPORTS, content=body, headers={"content-type": content_type})
    assert_problem(response, 400)
    assert await catalogue(client) == []


async def test_a_garbled_multipart_body_is_400(client):
    body = b"--b\r\nthis header has no colon\r\n\r\nx\r\n--b--\r\n"
    response = await client.post(
        IMPORTS, content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert_problem(response, 400)


async def test_two_files_are_422(client):
    body, content_type = _multipart([("file", GOOD), ("file", GOOD)])
    response = await client.post(IMPORTS, content=body, headers={"content-type": content_type})
    assert error_locs(response) == [["body", "file"]]
    assert await catalogue(client) == []


async def test_broken_csv_in_the_first_row_fails_the_job_naming_the_row(client):
    job = await finished(client, await upload(client, HEADER.encode() + b'"open,quote\n'))
    assert job["status"] == "failed"
    assert [(e["row"], e["column"]) for e in job["errors"]] == [(2, None)]
    assert "not valid CSV" in job["errors"][0]["message"]


async def test_a_row_spanning_lines_is_numbered_by_its_first_line(client):
    content = HEADER + 'OK-1,"two\nlines",,,,1,0,true\nBAD 2,x,,,,1,0,true\n'
    job = await finished(client, await upload(client, content.encode()))
    assert [(e["row"], e["column"]) for e in job["errors"]] == [(4, "sku")]


async def test_errors_are_capped_with_a_count(client):
    content = HEADER + "".join(f"BAD {n},x,,,,1,0,true\n" for n in range(1500))
    job = await finished(client, await upload(client, content.encode()))
    assert job["status"] == "failed"
    assert len(job["errors"]) == 1001
    assert job["errors"][-1]["message"] == "… and 500 more errors"


async def test_a_starting_process_fails_jobs_whose_process_died(settings, client, engine):
    from inventory.main import create_app

    long_ago = utcnow().replace(year=2020)
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        stuck = ImportJob(
            kind="products", status=JobStatus.running, dry_run=False, heartbeat_at=long_ago
        )
        session.add(stuck)
    app = create_app(settings.model_copy(update={"maintenance_in_process": True}))
    async with app.router.lifespan_context(app):
        for _ in range(100):
            job = (await client.get(f"{API}/imports/{stuck.id}")).json()
            if job["status"] == "failed":
                break
            await asyncio.sleep(0.05)
    assert job["status"] == "failed"

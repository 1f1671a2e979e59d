"""Several workers and no Redis: nothing could tell one worker of another's writes, so no cache.

``inventory serve --workers 2`` on SQLite says the response cache is off, and
a write through the shared port is read back by every following request,
whichever worker answers it.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from inventory.models import Role
from inventory.worker_count import NOTE
from tests.cache.redis_server import spare_port
from tests.helpers import API, create_product
from tests.processes import INVENTORY, environment

pytestmark = pytest.mark.backend("sqlite")


@contextmanager
def two_workers(log: Path, **variables: str) -> Iterator[str]:
    """``inventory serve --workers 2`` on a spare port, output to ``log``; its URL once both
    workers have started."""
    port = spare_port()
    with (
        log.open("wb") as output,
        subprocess.Popen(  # noqa: S603 - our own console script
            [INVENTORY, "serve", "--no-migrate", "--workers", "2", "--port", str(port)],
            env=environment(**variables),
            stdout=output,
            stderr=subprocess.STDOUT,
        ) as server,
    ):
        try:
            deadline = time.monotonic() + 60
            while log.read_text().count("Application startup complete") < 2:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not come up: {log.read_text()}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)


async def test_two_workers_without_redis_read_every_write_through_the_port(
    settings, client, accounts, tmp_path: Path
):
    product = await create_product(client, "W-1")
    path = f"{API}/products/{product['id']}"
    log = tmp_path / "serve.log"
    with two_workers(
        log,
        INVENTORY_DATABASE_URL=settings.database_url,
        INVENTORY_SECRET_KEY=settings.secret_key.get_secret_value(),
    ) as base:
        assert NOTE in log.read_text()
        # A new connection for every request, so both workers answer some.
        async with httpx.AsyncClient(
            base_url=base,
            headers=accounts[Role.manager].headers,
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=30,
        ) as http:
            before = [await http.get(path) for _ in range(20)]
            assert {r.json()["version"] for r in before} == {1}
            assert {r.headers["x-cache"] for r in before} == {"MISS"}

            patched = await http.patch(path, json={"name": "Changed"})
            assert patched.status_code == 200, patched.text
            after = [(await http.get(path)).json() for _ in range(20)]
            assert {(p["version"], p["name"]) for p in after} == {(2, "Changed")}

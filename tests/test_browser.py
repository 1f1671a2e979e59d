"""The docs pages in a real browser with no internet: they render, sign in and run queries.

A served ``inventory`` process and headless Chromium that can reach 127.0.0.1
only (see ``tests/browser.py``). Screenshots go to the test's tmp dir, and also
to ``$INVENTORY_TEST_SCREENSHOTS`` when that is set.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest

from inventory.config import Settings
from inventory.models import Role
from tests.browser import DevTools, Page, chromium, find_chromium, open_page
from tests.conftest import IN_CI, Account
from tests.helpers import create_product
from tests.processes import Server, serving

# The browser checks the pages, not the database: one deployment is enough.
pytestmark = pytest.mark.backend("sqlite")

SKU = "BROWSER-1"
OPERATIONS = """[...document.querySelectorAll('.opblock-summary')].map(summary =>
    summary.querySelector('.opblock-summary-method').innerText + ' ' +
    summary.querySelector('.opblock-summary-path').getAttribute('data-path'))"""


@pytest.fixture
def chromium_executable() -> str:
    executable = find_chromium()
    if executable is None:
        if IN_CI:
            pytest.fail("chromium is not installed; .ci/run installs it", pytrace=False)
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return executable


@pytest.fixture
async def product(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create_product(client, SKU, name="Seen through GraphiQL")


@pytest.fixture
def server(settings: Settings, product: dict[str, Any]) -> Iterator[Server]:
    """The real service on the test database, signing tokens with the tests' key."""
    with serving(
        "--no-migrate",
        INVENTORY_DATABASE_URL=settings.database_url,
        INVENTORY_SECRET_KEY=settings.secret_key.get_secret_value(),
    ) as running:
        yield running


@pytest.fixture
async def browser(chromium_executable: str, tmp_path: Path) -> AsyncIterator[DevTools]:
    async with chromium(chromium_executable, tmp_path / "chromium") as devtools:
        yield devtools


def keep(screenshot: Path) -> None:
    if directory := os.environ.get("INVENTORY_TEST_SCREENSHOTS"):
        Path(directory).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(directory) / screenshot.name)


async def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    await asyncio.to_thread(keep, await page.screenshot(tmp_path / f"{name}.png"))


def assert_stayed_on(server: Server, page: Page) -> None:
    """Every request the page sent went to the service (data: and blob: stay in the tab)."""
    outgoing = page.outgoing_urls()
    assert outgoing, "the page requested nothing"
    elsewhere = [u for u in outgoing if not u.startswith((f"{server.url}/", "data:", "blob:"))]
    assert elsewhere == []
    assert page.uncaught_errors() == []


def openapi_operations(server: Server) -> set[str]:
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    return {f"{method.upper()} {path}" for path, item in paths.items() for method in item}


async def test_swagger_ui_lists_every_operation_and_signs_in(
    browser: DevTools, server: Server, accounts: dict[Role, Account], tmp_path: Path
) -> None:
    viewer = accounts[Role.viewer]
    async with asyncio.timeout(120):
        page = await open_page(browser)
        await page.goto(f"{server.url}/docs")
        await page.wait_for("document.querySelectorAll('.opblock').length > 0")
        operations = await page.evaluate(OPERATIONS)
        assert "POST /api/v1/stock/movements" in operations
        assert set(operations) == openapi_operations(server)
        await screenshot(page, tmp_path, "swagger-ui")

        # Authorize: the OAuth2 password flow against the token URL, as a person does it.
        await page.click(".auth-wrapper .authorize")
        await page.type("#oauth_username", viewer.email)
        await page.type("#oauth_password", viewer.password)
        await page.click(".auth-btn-wrapper .authorize")
        await page.wait_for("document.querySelector('.auth-btn-wrapper .btn-done') !== null")
        await page.wait_for(
            "[...document.querySelectorAll('.auth-btn-wrapper button')]"
            ".some(button => button.innerText === 'Logout')"
        )
        await page.click(".auth-btn-wrapper .btn-done")

        # Try it out: GET /api/v1/users/me with the token Swagger UI now holds.
        me = "#operations-users-read_me_api_v1_users_me_get"
        await page.click(f"{me} .opblock-summary-control")
        await page.click(f"{me} .try-out__btn")
        await page.click(f"{me} .execute")
        answer = await page.wait_for(
            f"document.querySelector('{me} .live-responses-table')?.innerText"
        )
        assert viewer.email in answer
        assert '"role": "viewer"' in answer
        await screenshot(page, tmp_path, "swagger-ui-signed-in")
        assert f"{server.url}/api/v1/auth/token" in page.outgoing_urls()
        assert_stayed_on(server, page)


async def test_redoc_renders_every_operation(
    browser: DevTools, server: Server, tmp_path: Path
) -> None:
    async with asyncio.timeout(120):
        page = await open_page(browser)
        await page.goto(f"{server.url}/redoc")
        selector = "[data-section-id^='operation/']"
        await page.wait_for(f"document.querySelectorAll({json.dumps(selector)}).length > 0")
        rendered = await page.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length")
        assert rendered == len(openapi_operations(server))
        assert "/api/v1/stock/movements" in await page.evaluate("document.body.innerText")
        await screenshot(page, tmp_path, "redoc")
        assert_stayed_on(server, page)


async def test_graphiql_runs_a_query_and_shows_the_result(
    browser: DevTools, server: Server, accounts: dict[Role, Account], tmp_path: Path
) -> None:
    # Strawberry's page reads the query from ?q= and the headers editor from ?headers=
    # (decodeURIComponent, so spaces must be %20, not +).
    query = f'{{ product(sku: "{SKU}") {{ sku name stockLevels {{ quantity }} }} }}'
    headers = json.dumps(accounts[Role.viewer].headers)
    url = f"{server.url}/graphql?" + urlencode({"q": query, "headers": headers}, quote_via=quote)
    async with asyncio.timeout(120):
        page = await open_page(browser)
        await page.goto(url)
        await page.wait_for("document.querySelector('.graphiql-execute-button') !== null")
        await page.click(".graphiql-execute-button")
        result = await page.wait_for(
            "(document.querySelector('.result-window')?.innerText ?? '')"
            f".includes({json.dumps(SKU)}) && document.querySelector('.result-window').innerText"
        )
        # CodeMirror indents with no-break spaces.
        assert json.loads(result.replace("\xa0", " ")) == {
            "data": {"product": {"sku": SKU, "name": "Seen through GraphiQL", "stockLevels": []}},
            # product, sku, name and stockLevels, and quantity for each of up to 50 levels
            "extensions": {"cost": 54},
        }
        await screenshot(page, tmp_path, "graphiql")
        assert f"{server.url}/graphql" in page.outgoing_urls()
        assert_stayed_on(server, page)

"""Fixtures for the cache tests: a viewer's client, and a log of the SQL each request runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.models import Role
from tests.conftest import Account


class StatementLog:
    """Every statement the app's engine sends, so a test can say a request sent none."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement)

    async def get(
        self, http: httpx.AsyncClient, url: str, **kwargs: Any
    ) -> tuple[httpx.Response, list[str]]:
        """GET ``url``; the answer and the statements sent while it was served."""
        start = len(self.statements)
        response = await http.get(url, **kwargs)
        return response, self.statements[start:]


@pytest.fixture
def sql(engine: AsyncEngine) -> Iterator[StatementLog]:
    log = StatementLog()
    event.listen(engine.sync_engine, "before_cursor_execute", log)
    yield log
    event.remove(engine.sync_engine, "before_cursor_execute", log)


@pytest.fixture
async def viewer(app: FastAPI, accounts: dict[Role, Account]) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as a viewer, the least a reader of the cached routes needs."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=accounts[Role.viewer].headers
    ) as http:
        yield http

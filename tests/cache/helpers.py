"""Helpers for the cache tests: counting the SQL a request runs, and warming entries."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import API


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


def url(path: str, ids: dict[str, Any]) -> str:
    """``API + path`` with the ``{…}`` placeholders filled from ``ids``."""
    return API + path.format(**ids)


async def warm(http: httpx.AsyncClient, target: str) -> httpx.Response:
    """Read ``target`` until the answer comes from the cache; that answer.

    A read-after-write test warms what it then expects to change: had the
    write not invalidated the entry, the stale answer would be served.
    """
    first = await http.get(target)
    assert first.status_code == 200, first.text
    second = await http.get(target)
    assert second.headers["x-cache"] == "HIT", target
    return second

"""FastAPI dependencies, as ``Annotated`` aliases route signatures read with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request

from inventory.config import Settings
from inventory.db import Database, UnitOfWork, unit_of_work
from inventory.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from inventory.kit.schemas import MAX_ID


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    database: Database = request.app.state.db
    sessions = database.sessions(write=request.method not in _READ_METHODS)
    async with unit_of_work(sessions) as uow:
        yield uow


# scope="function": commit before the response is sent, so a failed commit
# becomes an error response instead of a 2xx for work that was lost. Routes
# reach the session as ``uow.session``, created on first use only.
UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work, scope="function")]


@dataclass(frozen=True)
class PageQuery:
    limit: int
    cursor: str | None


async def get_page_query(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=1024, description="`next_cursor` of the previous page")
    ] = None,
) -> PageQuery:
    return PageQuery(limit=limit, cursor=cursor)


PageDep = Annotated[PageQuery, Depends(get_page_query)]


EntryId = Annotated[int, Path(ge=1, le=MAX_ID, description="The entry's id")]

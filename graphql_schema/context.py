"""The GraphQL context: the database session, the caller, the change feed and DataLoaders.

Over HTTP the context wraps the request's unit of work, committed before the
response is sent, exactly as REST's. A WebSocket lives for hours, so it holds
no session: each use opens a short read-only unit of work, and it carries
subscriptions only (queries and mutations go over HTTP; see extensions.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from graphql_schema.loaders import Loaders
from inventory import security
from inventory.changefeed import ChangeFeed
from inventory.config import Settings
from inventory.db import Database, UnitOfWork
from inventory.deps import DatabaseDep, SettingsDep, request_unit_of_work
from inventory.models import User
from inventory.users import service as users

BEARER = "bearer "


@dataclass
class Context(BaseContext):
    database: Database
    settings: Settings
    feed: ChangeFeed
    uow: UnitOfWork | None
    """The HTTP request's unit of work; None over a WebSocket."""
    handshake_token: str | None
    _user: User | None = field(default=None, init=False)
    _user_checked: bool = field(default=False, init=False)
    # GraphQL resolves sibling fields concurrently; one AsyncSession must not be.
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        super().__init__()
        self.loaders = Loaders(self.session)

    @property
    def is_websocket(self) -> bool:
        return self.uow is None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for one resolver at a time: the request's, or a short one on a WebSocket."""
        async with self._lock:
            if self.uow is not None:
                yield self.uow.session
                return
            async with self.database.unit_of_work(write=False) as uow:
                yield uow.session

    @property
    def token(self) -> str | None:
        """The bearer token: from the request, or from the WebSocket's connection_init payload."""
        return _token_in(self.connection_params) or self.handshake_token

    async def user(self) -> User | None:
        """The active user behind the token; None if there is none.

        Read once per HTTP request; on a WebSocket read afresh for each
        operation, so a long connection does not outlive a deactivation.
        """
        if self._user_checked and not self.is_websocket:
            return self._user
        user = None
        if token := self.token:
            try:
                claims = security.decode_access_token(token, self.settings)
            except security.InvalidToken:
                claims = None
            if claims is not None:
                async with self.session() as session:
                    user = await users.get_active_user(session, claims.user_id)
        self._user, self._user_checked = user, True
        return user


def _token_in(params: Any) -> str | None:
    """A token from ``{"Authorization": "Bearer …"}`` or ``{"token": "…"}``."""
    if not isinstance(params, dict):
        return None
    for key in ("Authorization", "authorization"):
        value = params.get(key)
        if isinstance(value, str) and value.lower().startswith(BEARER):
            return value[len(BEARER) :].strip() or None
    token = params.get("token")
    return token if isinstance(token, str) and token else None


def _handshake_token(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    if header.lower().startswith(BEARER):
        return header[len(BEARER) :].strip() or None
    if connection.scope["type"] == "websocket":
        # Browsers cannot set headers on a WebSocket; ?token= as /ws/stock takes it.
        return connection.query_params.get("token") or None
    return None


async def connection_unit_of_work(
    connection: HTTPConnection, database: DatabaseDep
) -> AsyncIterator[UnitOfWork | None]:
    if connection.scope["type"] != "http":
        yield None
        return
    async with request_unit_of_work(database, connection.scope["method"]) as uow:
        yield uow


async def get_context(
    connection: HTTPConnection,
    settings: SettingsDep,
    database: DatabaseDep,
    # scope="function": committed before the response is sent, as REST's.
    uow: Annotated[UnitOfWork | None, Depends(connection_unit_of_work, scope="function")],
) -> Context:
    return Context(
        database=database,
        settings=settings,
        feed=connection.app.state.change_feed,
        uow=uow,
        handshake_token=_handshake_token(connection),
    )

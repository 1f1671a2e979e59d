"""The GraphQL context: the database session, the caller, the change feed and DataLoaders.

The caller is signed in by ``inventory.auth.signin``; this only finds the
token: the ``Authorization`` header of the request (or of the WebSocket's
handshake), ``?token=`` on a WebSocket's URL, or its connection_init payload.

Over HTTP the context opens the request's unit of work at first use,
committed before the response is sent, exactly as REST's: a reader's for a
query, a (queued) writer's only for a mutation. A WebSocket lives for hours,
so it holds no session: each use opens a short read-only unit of work, and it
carries subscriptions only (queries and mutations go over HTTP; see
extensions.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from graphql_schema.loaders import Loaders
from inventory.auth import signin
from inventory.auth.signin import (
    Caller,
    RememberedUsers,
    authenticate,
    connection_caller,
    token_from_authorization,
)
from inventory.auth.throttle import WriteThrottle
from inventory.changefeed import ChangeFeed
from inventory.config import Settings
from inventory.db import Database
from inventory.deps import DatabaseDep, SettingsDep, bearer, remembered_users, stream_slots
from inventory.errors import Unauthenticated
from inventory.logs import user_id_var
from inventory.models import Role, User
from inventory.streams.slots import SlotKind, StreamSlots
from inventory.unit_of_work import UnitOfWork


class RequestTransaction:
    """One HTTP request's unit of work, opened on first use; ``write`` decides which kind."""

    def __init__(self, database: Database, stack: AsyncExitStack) -> None:
        self._database = database
        self._stack = stack
        self._uow: UnitOfWork | None = None
        self.write = False

    async def session(self) -> AsyncSession:
        if self._uow is None:
            self._uow = await self._stack.enter_async_context(
                self._database.unit_of_work(write=self.write, queued=True)
            )
        return self._uow.session


@dataclass
class Context(BaseContext):
    database: Database
    settings: Settings
    feed: ChangeFeed
    remembered: RememberedUsers
    transaction: RequestTransaction | None
    """The HTTP request's; None over a WebSocket."""
    handshake_token: str | None
    """The token the request or the WebSocket's handshake carried (see ``_handshake_token``)."""
    write_throttle: WriteThrottle | None = None
    """Charged once per mutation request (``extensions.Transports``); None in tests that
    build a context."""
    slots: StreamSlots | None = None
    """Per-user live-stream slots, one held by each subscription; None in tests that build
    a context."""
    _signed_in: User | Unauthenticated | None = field(default=None, init=False)
    # GraphQL resolves sibling fields concurrently; one AsyncSession must not be.
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        super().__init__()
        self.loaders = Loaders(self.session)

    def refresh_loaders(self) -> None:
        """Forget what the loaders hold: after a write, nested fields read the new state."""
        self.loaders = Loaders(self.session)

    @property
    def is_websocket(self) -> bool:
        return self.transaction is None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for one resolver at a time: the request's, or a short one on a WebSocket."""
        async with self._lock:
            if self.transaction is not None:
                yield await self.transaction.session()
                return
            async with self.database.unit_of_work(write=False) as uow:
                yield uow.session

    @asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """The session for a mutation's write; nested fields of its answer read afresh."""
        try:
            async with self.session() as session:
                yield session
        finally:
            self.refresh_loaders()

    @property
    def token(self) -> str | None:
        """The token: from the WebSocket's connection_init payload, or the request's."""
        return _token_in(self.connection_params) or self.handshake_token

    async def signed_in(self) -> User:
        """The active user behind the token; Unauthenticated when there is none.

        Over HTTP found once per request (the refusal too), as REST finds it;
        on a WebSocket asked again for each operation.
        """
        if isinstance(self._signed_in, Unauthenticated):
            raise self._signed_in
        if self._signed_in is not None:
            return self._signed_in
        try:
            user = await authenticate(self.token, self.settings, self.database, self.remembered)
        except Unauthenticated as refused:
            if not self.is_websocket:
                self._signed_in = refused
            raise
        if not self.is_websocket:
            self._signed_in = user
            if self.request is not None:
                # For the access line and every log line of this request, as REST does.
                self.request.scope.setdefault("state", {})["user_id"] = user.id
                user_id_var.set(user.id)
        return user

    async def user(self) -> User | None:
        """The active user behind the token; None if there is none."""
        try:
            return await self.signed_in()
        except Unauthenticated:
            return None

    async def caller(self, role: Role) -> Caller:
        """The caller of a subscription that needs ``role``; Unauthenticated or Forbidden."""
        return await connection_caller(
            self.token, role, self.settings, self.database, self.remembered
        )

    def live_slot(self, caller: Caller) -> AbstractAsyncContextManager[object]:
        """One of the caller's live-stream slots, for a subscription; TooManyRequests when
        all are taken (the subscription is refused, the socket stays open)."""
        if self.slots is None:
            return nullcontext()
        return self.slots.hold(SlotKind.live, caller.user_id)

    async def recheck(self, caller: Caller) -> Caller:
        """A subscription's caller checked again (see ``inventory.auth.signin``)."""
        return await signin.recheck(caller, self.settings, self.database, self.remembered)


def _token_in(params: Any) -> str | None:
    """A token from ``{"Authorization": "Bearer …"}`` or ``{"token": "…"}``."""
    if not isinstance(params, dict):
        return None
    for key in ("Authorization", "authorization"):
        value = params.get(key)
        if isinstance(value, str) and (token := token_from_authorization(value)):
            return token
    token = params.get("token")
    return token if isinstance(token, str) and token else None


def _handshake_token(connection: HTTPConnection) -> str | None:
    if token := bearer(connection):
        return token
    if connection.scope["type"] == "websocket":
        # Browsers cannot set headers on a WebSocket; ?token= as /ws/stock takes it.
        return connection.query_params.get("token") or None
    return None


async def request_transaction(
    connection: HTTPConnection, database: DatabaseDep
) -> AsyncIterator[RequestTransaction | None]:
    if connection.scope["type"] != "http":
        yield None
        return
    async with AsyncExitStack() as stack:
        yield RequestTransaction(database, stack)


async def get_context(
    connection: HTTPConnection,
    settings: SettingsDep,
    database: DatabaseDep,
    # scope="function": committed before the response is sent, as REST's.
    transaction: Annotated[
        RequestTransaction | None, Depends(request_transaction, scope="function")
    ],
) -> Context:
    return Context(
        database=database,
        settings=settings,
        feed=connection.app.state.change_feed,
        remembered=remembered_users(connection),
        transaction=transaction,
        handshake_token=_handshake_token(connection),
        write_throttle=connection.app.state.write_throttle,
        slots=stream_slots(connection),
    )


ContextInfo = Info[Context, None]
"""What resolvers take as ``info``: Strawberry's, with this context typed."""

"""FastAPI dependencies, as ``Annotated`` aliases route signatures read with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, WebSocket, WebSocketException
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection
from starlette.status import WS_1008_POLICY_VIOLATION

from inventory.auth.signin import (
    Caller,
    RememberedUsers,
    authenticate,
    check_role,
    connection_caller,
    token_from_authorization,
)
from inventory.auth.throttle import WriteThrottle
from inventory.cache.store import CacheTiers
from inventory.changefeed import ChangeFeed
from inventory.config import Settings
from inventory.db import Database
from inventory.errors import Forbidden, Unauthenticated
from inventory.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from inventory.kit.schemas import MAX_ID
from inventory.logs import user_id_var
from inventory.models import Role, User
from inventory.shutdown import ShutdownSignal
from inventory.streams.slots import SlotKind, StreamSlots
from inventory.unit_of_work import UnitOfWork

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret


async def get_settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_database(connection: HTTPConnection) -> Database:
    database: Database = connection.app.state.db
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]


async def get_change_feed(connection: HTTPConnection) -> ChangeFeed:
    feed: ChangeFeed = connection.app.state.change_feed
    return feed


ChangeFeedDep = Annotated[ChangeFeed, Depends(get_change_feed)]


async def get_shutdown(connection: HTTPConnection) -> ShutdownSignal:
    shutdown: ShutdownSignal = connection.app.state.shutdown
    return shutdown


ShutdownDep = Annotated[ShutdownSignal, Depends(get_shutdown)]


def request_unit_of_work(
    database: Database, method: str
) -> AbstractAsyncContextManager[UnitOfWork]:
    """The unit of work for one HTTP request: a queued writer's when the method may write."""
    return database.unit_of_work(write=method not in _READ_METHODS, queued=True)


async def get_unit_of_work(request: Request, database: DatabaseDep) -> AsyncIterator[UnitOfWork]:
    async with request_unit_of_work(database, request.method) as uow:
        yield uow


async def get_read_unit_of_work(database: DatabaseDep) -> AsyncIterator[UnitOfWork]:
    async with database.unit_of_work(write=False) as uow:
        yield uow


# scope="function": commit before the response is sent, so a failed commit
# becomes an error response instead of a 2xx for work that was lost. Routes
# reach the session as ``uow.session``, created on first use only.
UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work, scope="function")]
ReadUnitOfWorkDep = Annotated[UnitOfWork, Depends(get_read_unit_of_work, scope="function")]
"""For a POST that only reads, so it takes no write lock on SQLite (signing in)."""

# For OpenAPI's "Authorize" (see inventory.openapi); requests are signed
# in by ``signed_in`` below, which reads the header itself.
bearer_token = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def bearer(connection: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer …`` header (the scheme in any case), or None."""
    return token_from_authorization(connection.headers.get("authorization", ""))


def remembered_users(connection: HTTPConnection) -> RememberedUsers:
    """The process's remembered users, for ``inventory.auth.signin``."""
    tiers: CacheTiers = connection.app.state.cache
    return tiers


_USER = "inventory.user"
_TOKEN = "inventory.token"  # noqa: S105 - a key, not a secret
_ROLE = "inventory.role"
"""Where ``signed_in`` keeps the request's user and token, and ``RoleRequirement`` the role
it asked for, in ``scope["state"]``."""


async def signed_in(connection: HTTPConnection) -> User:
    """The request's active user, found once per request; 401 for anything else.

    One plain function rather than a chain of dependencies: it runs on every
    request, and FastAPI's dependency solving costs per node. A request that
    may write is charged against the user's write rate here, once (see
    ``WriteThrottle``).
    """
    state = connection.scope.setdefault("state", {})
    user: User | None = state.get(_USER)
    if user is not None:
        return user
    app = connection.app.state
    token = bearer(connection)
    user = await authenticate(token, app.settings, app.db, remembered_users(connection))
    state[_USER], state[_TOKEN] = user, token
    # For the access log line and every log line of this request.
    state["user_id"] = user.id
    user_id_var.set(user.id)
    if connection.scope.get("method", "GET") not in _READ_METHODS:
        throttle: WriteThrottle = app.write_throttle
        await throttle.charge(user.id)
    return user


CurrentUser = Annotated[User, Depends(signed_in)]


class RoleRequirement:
    """A dependency that lets a user through when their role is at least ``role``.

    Its ``role`` attribute is how the authorization test reads each route's rule.
    """

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(self, connection: HTTPConnection) -> User:
        user = check_role(await signed_in(connection), self.role)
        connection.scope["state"][_ROLE] = self.role
        return user


async def stream_caller(connection: HTTPConnection) -> Caller:
    """The caller of a long-lived response, as its route's ``RoleRequirement`` signed it in.

    The route must declare its role (``require_role``); the response checks
    the caller again at that role (see ``inventory.auth.signin``).
    """
    state = connection.scope["state"]
    if _ROLE not in state:
        raise RuntimeError(f"{connection.url.path} streams without declaring a role")
    app = connection.app.state
    return await connection_caller(
        state[_TOKEN], state[_ROLE], app.settings, app.db, remembered_users(connection)
    )


StreamCaller = Annotated[Caller, Depends(stream_caller)]


def stream_slots(connection: HTTPConnection) -> StreamSlots:
    """The process's per-user slots for downloads and live streams."""
    slots: StreamSlots = connection.app.state.stream_slots
    return slots


Release = Callable[[], Awaitable[None]]
"""Gives a held slot back early; the dependency that took it gives it back anyway."""


def holding_slot(kind: SlotKind) -> Callable[[HTTPConnection], AsyncIterator[Release]]:
    """A dependency holding one of the caller's slots of ``kind`` until the response has
    been streamed (a dependency with ``yield`` ends after the response); 429 when all are
    taken.

    The response gives it back as soon as its last byte is ready, so a client that
    starts its next download the moment one ends is not refused.
    """

    async def slot_of_kind(connection: HTTPConnection) -> AsyncIterator[Release]:
        user = await signed_in(connection)
        slots = stream_slots(connection)
        async with slots.hold(kind, user.id) as slot:
            yield partial(slots.release, slot)

    return slot_of_kind


DownloadSlot = Annotated[Release, Depends(holding_slot(SlotKind.download))]
LiveStreamSlot = Annotated[Release, Depends(holding_slot(SlotKind.live))]


class SocketRoleRequirement:
    """A WebSocket dependency: the caller behind ``?token=``, who must have at least ``role``.

    Browsers cannot set headers on a WebSocket, hence the query parameter. A
    refused socket is accepted and then closed with 1008 (policy violation)
    and the refusal's words, because a socket closed before it is accepted
    reaches a browser as a bare failed handshake, with no code or reason it
    can read. Its ``role`` attribute is how the authorization test reads the rule.
    """

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(
        self,
        websocket: WebSocket,
        token: Annotated[str | None, Query(description="An access token")] = None,
    ) -> Caller:
        app = websocket.app.state
        try:
            return await connection_caller(
                token, self.role, app.settings, app.db, remembered_users(websocket)
            )
        except (Unauthenticated, Forbidden) as exc:
            await websocket.accept()
            raise WebSocketException(WS_1008_POLICY_VIOLATION, exc.detail) from None


def require_role(role: Role) -> Any:
    """``Depends(...)`` for a route or router that needs at least ``role``."""
    return Depends(RoleRequirement(role))


ViewerUser = Annotated[User, require_role(Role.viewer)]
ClerkUser = Annotated[User, require_role(Role.clerk)]
ManagerUser = Annotated[User, require_role(Role.manager)]


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

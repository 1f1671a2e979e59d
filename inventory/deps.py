"""FastAPI dependencies, as ``Annotated`` aliases route signatures read with."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.datastructures import State
from starlette.requests import HTTPConnection

from inventory import security
from inventory.auth.throttle import WriteThrottle
from inventory.cache.store import CacheTiers
from inventory.config import Settings
from inventory.db import Database, UnitOfWork
from inventory.errors import Forbidden, Unauthenticated
from inventory.jobs.dispatch import JobRunner
from inventory.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from inventory.kit.schemas import MAX_ID
from inventory.logs import user_id_var
from inventory.models import Role, User
from inventory.users import service as users

logger = logging.getLogger(__name__)

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


async def get_job_runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.jobs
    return runner


JobRunnerDep = Annotated[JobRunner, Depends(get_job_runner)]


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

# For OpenAPI's "Authorize" (see main._document_common_errors) and the event stream,
# which hands its token on; requests are signed in by ``signed_in`` below.
bearer_token = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def bearer(connection: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer …`` header (the scheme in any case), or None."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def user_behind(token: str, state: State) -> User | None:
    """The active user behind ``token``; None for a bad or expired token or a missing user.

    Verified tokens and active users are remembered in the process; a change
    to a user (role, deactivation, password) is a committed event that drops
    them here at once and, through Redis, in every other process. Without
    Redis they are remembered only where there is no other process to miss
    the news (see the cache settings). No session is held for this.
    """
    try:
        claims = security.verified_claims(token, state.settings)
    except security.InvalidToken as exc:
        logger.info("rejected token: %s", exc)
        return None
    tiers: CacheTiers = state.cache
    user: User | None = tiers.cached_user(claims.user_id)
    if user is None:
        generation = tiers.user_generation
        database: Database = state.db
        async with database.unit_of_work(write=False) as uow:
            user = await users.get_active_user(uow.session, claims.user_id)
        if user is not None:
            tiers.remember_user(claims.user_id, user, generation)
    return user


_USER = "inventory.user"
"""Where ``signed_in`` keeps the request's user in ``scope["state"]``."""


async def signed_in(connection: HTTPConnection) -> User:
    """The request's active user, found once per request; 401 for anything else.

    One plain function rather than a chain of dependencies: it runs on every
    request, and FastAPI's dependency solving costs per node. A write also
    counts against the user's write rate here, once.
    """
    state = connection.scope.setdefault("state", {})
    user: User | None = state.get(_USER)
    if user is not None:
        return user
    token = bearer(connection)
    if token is None:
        raise Unauthenticated("Sign in first: this endpoint needs a bearer token.")
    user = await user_behind(token, connection.app.state)
    if user is None:
        raise Unauthenticated("The token is invalid or has expired.")
    state[_USER] = user
    # For the access log line and every log line of this request.
    state["user_id"] = user.id
    user_id_var.set(user.id)
    if connection.scope.get("method", "GET") not in _READ_METHODS:
        throttle: WriteThrottle = connection.app.state.write_throttle
        await throttle.check(user.id)
    return user


CurrentUser = Annotated[User, Depends(signed_in)]


class RoleRequirement:
    """A dependency that lets a user through when their role is at least ``role``.

    Its ``role`` attribute is how the authorization test reads each route's rule.
    """

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(self, connection: HTTPConnection) -> User:
        user = await signed_in(connection)
        if not user.role.allows(self.role):
            raise Forbidden(f"This needs the {self.role.value} role or higher.")
        return user


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

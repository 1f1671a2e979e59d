"""The per-request GraphQL context: the unit of work, the caller, and DataLoaders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from graphql_schema.loaders import Loaders
from inventory import security
from inventory.config import Settings
from inventory.db import UnitOfWork
from inventory.deps import SettingsDep, UnitOfWorkDep, bearer_token
from inventory.models import User
from inventory.users import service as users


@dataclass
class Context(BaseContext):
    uow: UnitOfWork
    settings: Settings
    token: str | None
    _user: User | None = field(default=None, init=False)
    _user_checked: bool = field(default=False, init=False)
    # GraphQL resolves sibling fields concurrently; one AsyncSession must not be.
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        super().__init__()
        self.loaders = Loaders(self.session)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """The request's session, one resolver at a time."""
        async with self._lock:
            yield self.uow.session

    async def user(self) -> User | None:
        """The active user behind the token, read once per request; None if there is none."""
        if not self._user_checked:
            self._user_checked = True
            if self.token:
                try:
                    claims = security.decode_access_token(self.token, self.settings)
                except security.InvalidToken:
                    return None
                async with self.session() as session:
                    self._user = await users.get_active_user(session, claims.user_id)
        return self._user


async def get_context(
    request: Request,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(bearer_token)],
) -> Context:
    return Context(uow=uow, settings=settings, token=token)

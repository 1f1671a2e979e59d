"""The unit of work: one transaction per request or job, ended in one place, events after commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, nullcontext

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from inventory import events

logger = logging.getLogger(__name__)

AfterCommit = Callable[[Sequence[events.Event]], Awaitable[None]]


class UnitOfWork:
    """The request's transaction: an AsyncSession created on first use, ended in one place.

    A request that never touches the database (a cache hit, say) pays for no
    session at all. Events recorded by services are collected at each commit
    and handed to the listeners by ``publish``, once the transaction is over.
    """

    __slots__ = ("_after_commit", "_committed", "_factory", "_session")

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        after_commit: Sequence[AfterCommit] = (),
    ) -> None:
        self._factory = factory
        self._after_commit = after_commit
        self._session: AsyncSession | None = None
        self._committed: list[events.Event] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._factory()
        return self._session

    async def commit(self) -> None:
        if self._session is None:
            return
        await self._session.commit()
        self._committed.extend(events.take(self._session))

    async def close(self) -> None:
        """Roll back anything uncommitted (its events with it) and hand the connection back."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def publish(self) -> None:
        """Hand the committed events to the listeners."""
        committed, self._committed = self._committed, []
        if not committed:
            return
        for listener in self._after_commit:
            try:
                await listener(committed)
            except Exception:
                # The write is committed; failing the request now would only lie about it.
                logger.exception("after-commit listener %r failed", listener)


@asynccontextmanager
async def unit_of_work(
    factory: async_sessionmaker[AsyncSession],
    after_commit: Sequence[AfterCommit] = (),
    *,
    gate: asyncio.Lock | None = None,
) -> AsyncIterator[UnitOfWork]:
    """Commit when the block finishes cleanly, roll back when it raises.

    Listeners hear of what committed after the session is closed and the
    ``gate`` released, so no lock is held while they work.
    """
    uow = UnitOfWork(factory, after_commit)
    try:
        async with gate if gate is not None else nullcontext():
            try:
                yield uow
                await uow.commit()
            finally:
                await uow.close()
    finally:
        await uow.publish()

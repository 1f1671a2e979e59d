"""Following stock changes for one watcher: its filter, and its caller checked again as it goes.

The three live feeds (the WebSocket ``/ws/stock``, the event stream
``/stock/events`` and the GraphQL subscription ``stockChanged``) send the
changes of every level, or of one product or warehouse (``Wanted``), and
check their caller again every minute, just after the token expires, and at
once when the caller's ``UserBell`` rings (``inventory.auth.signin``); a
failed check ends them with Unauthenticated or Forbidden, raised from here.

- ``live_changes`` follows the change feed, each level's changes in commit
  order: the WebSocket and the subscription.
- ``follow_ledger`` follows the ledger itself (``inventory.stock.tail``),
  woken by the change feed, so a client resuming after a movement id gets
  exactly what it missed, then carries on live, in movement-id order: the
  event stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from inventory.auth.signin import Caller, UserBell
from inventory.changefeed import ChangeFeed, Subscription
from inventory.db import Database
from inventory.events import StockChanged
from inventory.stock import service
from inventory.stock.service import LedgerEntry
from inventory.stock.tail import LedgerTail

POLL_SECONDS = 1.0
"""How often the ledger is read with no wake-up: changes that reached no listener
of this process (Redis down, say) are sent late, not lost."""
DEBOUNCE_SECONDS = 0.03
"""After a wake-up, wait this long for more, so a burst costs one query per follower."""

UNAVAILABLE = "The database is unavailable: reconnect shortly."
"""What a live feed says when it ends because the database went away."""

Recheck = Callable[[Caller], Awaitable[Caller]]
"""Checks a caller again (``inventory.auth.signin.recheck`` with its arguments bound)."""
UserWatch = AbstractContextManager[UserBell]
"""The caller's user watched for changes while a follower runs (``RememberedUsers.watch_user``)."""


@dataclass(frozen=True)
class Wanted:
    """The filters of one watcher; None matches anything."""

    product_id: int | None = None
    warehouse_id: int | None = None

    def __call__(self, product_id: int, warehouse_id: int) -> bool:
        if self.product_id is not None and self.product_id != product_id:
            return False
        return self.warehouse_id is None or self.warehouse_id == warehouse_id

    def change(self, change: StockChanged) -> bool:
        return self(change.product_id, change.warehouse_id)


def payload(
    product_id: int, warehouse_id: int, quantity: int, reserved: int | None, movement_id: int
) -> str:
    """The JSON the WebSocket and the event stream send for one change."""
    return json.dumps(
        {
            "product_id": product_id,
            "warehouse_id": warehouse_id,
            "quantity": quantity,
            "reserved": reserved,
            "available": None if reserved is None else quantity - reserved,
            "movement_id": movement_id,
        },
        separators=(",", ":"),
    )


async def live_changes(
    changes: Subscription, wanted: Wanted, caller: Caller, recheck: Recheck, watch: UserWatch
) -> AsyncIterator[StockChanged]:
    """The wanted changes as the feed delivers them, for as long as the caller may watch.

    Raises Unauthenticated or Forbidden when a check of the caller fails, and
    SubscriberTooSlow when the watcher fell too far behind.
    """
    loop = asyncio.get_running_loop()
    with watch as bell:
        while True:
            try:
                async with asyncio.timeout(caller.seconds_until_recheck()) as deadline:
                    # A ring ends the wait now: the check is due.
                    with bell.waking(lambda: deadline.reschedule(loop.time())):
                        change = await anext(changes)
            except TimeoutError:
                bell.answered()
                caller = await recheck(caller)
                continue
            if wanted.change(change):
                yield change


@dataclass(frozen=True)
class Resumed:
    """The follower starts after this movement id."""

    after: int


@dataclass(frozen=True)
class Idle:
    """Nothing to send for ``idle_seconds``: time for the transport's keep-alive."""


Followed = Resumed | list[LedgerEntry] | Idle


async def follow_ledger(
    database: Database,
    feed: ChangeFeed,
    stopping: asyncio.Event,
    wanted: Wanted,
    after: int | None,
    caller: Caller,
    recheck: Recheck,
    watch: UserWatch,
    *,
    idle_seconds: float,
) -> AsyncGenerator[Followed, None]:
    """``Resumed``, then the wanted entries after ``after`` (or the ledger's end), batch by batch.

    Ends when ``stopping`` is set; raises Unauthenticated or Forbidden when a
    check of the caller fails. Database errors propagate.
    """
    loop = asyncio.get_running_loop()
    user_changed = asyncio.Event()
    with watch as user, user.waking(user_changed.set):
        async with feed.doorbell(wanted.change) as bell:
            # Listening before the ledger is read: nothing committed after it goes unheard.
            async with database.unit_of_work(write=False) as uow:
                end = await service.last_movement_id(uow.session)
            # An id beyond the end (a ledger restored from a backup, say) resumes at the end.
            tail = LedgerTail(end if after is None else min(after, end))
            yield Resumed(tail.cursor)
            next_idle = next_check = loop.time()
            next_idle += idle_seconds
            next_check += caller.seconds_until_recheck()
            while not stopping.is_set():
                bell.clear()
                async with database.unit_of_work(write=False) as uow:
                    entries = await tail.read(uow.session)
                sent = [e for e in entries if wanted(e.product_id, e.warehouse_id)]
                if sent:
                    yield sent
                    next_idle = loop.time() + idle_seconds
                if tail.more:
                    continue
                now = loop.time()
                settles_in = tail.settles_in()
                timeout = min(
                    POLL_SECONDS,
                    next_idle - now,
                    next_check - now,
                    POLL_SECONDS if settles_in is None else settles_in,
                )
                # While a missing id holds the tail back, any change may be the one it waits for.
                ring = bell.any_change if tail.waiting else bell.matching
                if await _first_of(ring, stopping, user_changed, within=max(timeout, 0.0)):
                    if stopping.is_set():
                        return
                    if not user_changed.is_set():
                        await asyncio.sleep(DEBOUNCE_SECONDS)  # let the rest of a burst commit
                now = loop.time()
                if now >= next_idle:
                    yield Idle()
                    next_idle = now + idle_seconds
                if now >= next_check or user_changed.is_set():
                    user_changed.clear()
                    caller = await recheck(caller)
                    next_check = loop.time() + caller.seconds_until_recheck()


async def _first_of(*events: asyncio.Event, within: float) -> bool:
    """Wait until one of ``events`` is set, for at most ``within`` seconds; whether one was."""
    if any(event.is_set() for event in events):
        return True
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)

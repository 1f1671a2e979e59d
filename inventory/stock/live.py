"""The live stock feeds: ``WS /ws/stock`` and the Server-Sent Events stream ``GET /stock/events``.

Both send ``{product_id, warehouse_id, quantity, movement_id}`` for every
committed change of a level (``quantity`` is the level right after it),
optionally for one product or warehouse.

The WebSocket pushes what the change feed delivers, each level's changes in
commit order (see ``inventory.sequencer``). Every socket reads its own bounded
queue, so a slow or dead client only ever holds itself up; one whose queue
overflows, or that takes no message for ``SEND_TIMEOUT_SECONDS``, is closed
with 1013 (try again later).

The event stream follows the ledger itself (``inventory.stock.tail``), woken
by the change feed, so ``Last-Event-ID`` replays exactly what a client
missed, then carries on live, in movement-id order.

Both check their caller again every minute and when the token expires
(``inventory.auth.connections``), and end when the check fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, WebSocket, WebSocketException
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect, WebSocketState

from inventory.auth.connections import Caller, SocketRoleRequirement, check_caller, token_caller
from inventory.changefeed import ChangeFeed, SubscriberTooSlow, Subscription
from inventory.db import Database
from inventory.deps import CurrentUser, DatabaseDep, SettingsDep, bearer_token, require_role
from inventory.errors import (
    Forbidden,
    Unauthenticated,
    ValidationFailed,
    field_error,
    problem_responses,
)
from inventory.events import StockChanged
from inventory.kit.schemas import RefId
from inventory.models import Role
from inventory.shutdown import ShutdownSignal
from inventory.stock import service
from inventory.stock.tail import LedgerTail

logger = logging.getLogger(__name__)

CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013
SEND_TIMEOUT_SECONDS = 10.0
PING_SECONDS = 15.0
POLL_SECONDS = 1.0
"""How often an event stream reads the ledger with no wake-up: changes that
reached no listener of this process (Redis down, say) are sent late, not lost."""
DEBOUNCE_SECONDS = 0.03
"""After a wake-up, wait this long for more, so a burst costs one query per stream."""
MAX_EVENT_ID = 2**63 - 1
UNAVAILABLE = "The database is unavailable: reconnect shortly."

socket_router = APIRouter(tags=["stock"])
stream_router = APIRouter(prefix="/stock", tags=["stock"], dependencies=[require_role(Role.viewer)])


@dataclass(frozen=True)
class Wanted:
    """The filters of one client; None matches anything."""

    product_id: int | None = None
    warehouse_id: int | None = None

    def __call__(self, product_id: int, warehouse_id: int) -> bool:
        if self.product_id is not None and self.product_id != product_id:
            return False
        return self.warehouse_id is None or self.warehouse_id == warehouse_id

    def change(self, change: StockChanged) -> bool:
        return self(change.product_id, change.warehouse_id)


def payload(product_id: int, warehouse_id: int, quantity: int, movement_id: int) -> str:
    """The JSON both feeds send for one change."""
    return json.dumps(
        {
            "product_id": product_id,
            "warehouse_id": warehouse_id,
            "quantity": quantity,
            "movement_id": movement_id,
        },
        separators=(",", ":"),
    )


async def get_change_feed(connection: HTTPConnection) -> ChangeFeed:
    feed: ChangeFeed = connection.app.state.change_feed
    return feed


async def get_shutdown(connection: HTTPConnection) -> ShutdownSignal:
    shutdown: ShutdownSignal = connection.app.state.shutdown
    return shutdown


ChangeFeedDep = Annotated[ChangeFeed, Depends(get_change_feed)]
ShutdownDep = Annotated[ShutdownSignal, Depends(get_shutdown)]
ViewerSocket = Annotated[Caller, Depends(SocketRoleRequirement(Role.viewer))]
_ref_id: TypeAdapter[int] = TypeAdapter(RefId)


async def socket_filters(
    websocket: WebSocket, product_id: str | None = None, warehouse_id: str | None = None
) -> Wanted:
    """The filters from the query; a bad one closes the socket with 1008 and says which."""
    values: dict[str, int | None] = {}
    for name, raw in (("product_id", product_id), ("warehouse_id", warehouse_id)):
        try:
            values[name] = None if raw is None else _ref_id.validate_strings(raw)
        except ValidationError:
            await websocket.accept()
            raise WebSocketException(
                CLOSE_POLICY_VIOLATION, f"{name} must be a positive integer id"
            ) from None
    return Wanted(**values)


@socket_router.websocket("/ws/stock")
async def stock_socket(
    websocket: WebSocket,
    caller: ViewerSocket,
    wanted: Annotated[Wanted, Depends(socket_filters)],
    feed: ChangeFeedDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> None:
    """Push every committed stock change (optionally one product's or warehouse's).

    Token in ``?token=``; closes with 1008 when it is missing or bad, when a
    filter is not an id, and when a re-check of the caller fails; with 1013
    when the client falls too far behind.
    """
    async with feed.subscribe() as changes:
        await websocket.accept()

        async def still_allowed() -> Caller:
            return await check_caller(database, settings, caller.token, Role.viewer)

        async def send(text: str) -> None:
            await websocket.send_text(text)

        pushing = asyncio.create_task(push_changes(changes, wanted, caller, still_allowed, send))
        listening = asyncio.create_task(_until_client_leaves(websocket))
        try:
            await asyncio.wait({pushing, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pushing, listening):
                task.cancel()
            await asyncio.gather(pushing, listening, return_exceptions=True)
        if pushing.done() and not pushing.cancelled():
            if (error := pushing.exception()) is None:
                await _close(websocket, pushing.result())
            elif not _client_gone(error):
                logger.error("stock socket failed", exc_info=error)


@dataclass(frozen=True)
class Closing:
    """Why the server ends a socket: the close code and reason to send."""

    code: int
    reason: str


async def push_changes(
    changes: Subscription,
    wanted: Wanted,
    caller: Caller,
    still_allowed: Callable[[], Awaitable[Caller]],
    send: Callable[[str], Awaitable[None]],
    *,
    send_timeout: float = SEND_TIMEOUT_SECONDS,
) -> Closing:
    """Send the wanted changes until the client falls behind or may no longer watch."""
    while True:
        try:
            async with asyncio.timeout(caller.seconds_until_recheck()):
                change = await anext(changes)
        except TimeoutError:
            try:
                caller = await still_allowed()
            except (Unauthenticated, Forbidden) as exc:
                return Closing(CLOSE_POLICY_VIOLATION, exc.detail)
            except SQLAlchemyError as exc:
                logger.warning("stock socket: could not check its caller: %s", type(exc).__name__)
                return Closing(CLOSE_TRY_AGAIN_LATER, UNAVAILABLE)
            continue
        except SubscriberTooSlow:
            return Closing(CLOSE_TRY_AGAIN_LATER, "Too far behind: reconnect and read faster.")
        if not wanted.change(change):
            continue
        text = payload(change.product_id, change.warehouse_id, change.quantity, change.movement_id)
        try:
            async with asyncio.timeout(send_timeout):
                await send(text)
        except TimeoutError:
            return Closing(CLOSE_TRY_AGAIN_LATER, "Too far behind: reconnect and read faster.")


async def _until_client_leaves(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it closes."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _close(websocket: WebSocket, closing: Closing) -> None:
    if websocket.application_state is not WebSocketState.CONNECTED:
        return
    # A client that reads nothing may never take the close frame either.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await websocket.close(closing.code, closing.reason)


def _client_gone(error: BaseException) -> bool:
    # The server reports a client that vanished mid-send as an OSError.
    return isinstance(error, WebSocketDisconnect | OSError)


LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="The id of the last event received: the stream resumes right after it "
        "(EventSource sends it when it reconnects).",
    ),
]


@stream_router.get(
    "/events",
    summary="Stock changes as Server-Sent Events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "One event per committed change: `id` is the movement id, `data` "
            "`{product_id, warehouse_id, quantity, movement_id}`; `: ping` every 15 s.",
        },
        **problem_responses(422),
    },
)
async def stock_events(
    user: CurrentUser,
    token: Annotated[str | None, Depends(bearer_token)],
    database: DatabaseDep,
    settings: SettingsDep,
    feed: ChangeFeedDep,
    shutdown: ShutdownDep,
    product_id: RefId | None = None,
    warehouse_id: RefId | None = None,
    last_event_id: Annotated[
        int | None,
        Query(ge=0, le=MAX_EVENT_ID, description="As the Last-Event-ID header, for curl users"),
    ] = None,
    last_event_id_header: LastEventIdHeader = None,
) -> StreamingResponse:
    """Every committed stock change from now on, or after `Last-Event-ID`, in movement order.

    A client that reconnects with `Last-Event-ID` (the header wins over the
    query parameter) first receives every change it missed, read from the
    ledger, then the live ones, with no gap and no duplicate.
    """
    after = _last_event_id(last_event_id_header) if last_event_id_header else last_event_id
    caller = token_caller(user, token or "", settings)
    stream = _event_stream(
        database,
        feed,
        shutdown,
        Wanted(product_id, warehouse_id),
        after,
        recheck=lambda: check_caller(database, settings, caller.token, Role.viewer),
        caller=caller,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _last_event_id(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_EVENT_ID:
        raise ValidationFailed(
            "The request is not valid.",
            [field_error(("header", "Last-Event-ID"), "must be a movement id", "int_parsing")],
        )
    return int(value)


async def _event_stream(
    database: Database,
    feed: ChangeFeed,
    shutdown: ShutdownSignal,
    wanted: Wanted,
    after: int | None,
    *,
    recheck: Callable[[], Awaitable[Caller]],
    caller: Caller,
) -> AsyncIterator[str]:
    """Replay from ``after`` (or start at the ledger's end), then follow it as it grows.

    If the database goes away the stream ends, asking the client to reconnect
    (EventSource does, with ``Last-Event-ID``, so nothing is lost).
    """
    try:
        async for chunk in _follow(database, feed, shutdown, wanted, after, recheck, caller):
            yield chunk
    except SQLAlchemyError as exc:
        logger.warning("stock event stream: database unavailable: %s", type(exc).__name__)
        yield f": {UNAVAILABLE}\n\n"


async def _follow(
    database: Database,
    feed: ChangeFeed,
    shutdown: ShutdownSignal,
    wanted: Wanted,
    after: int | None,
    recheck: Callable[[], Awaitable[Caller]],
    caller: Caller,
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    async with feed.doorbell(wanted.change) as bell:
        # Listening before the ledger is read: nothing committed after it goes unheard.
        async with database.unit_of_work(write=False) as uow:
            end = await service.last_movement_id(uow.session)
        # An id beyond the end (a ledger restored from a backup, say) resumes at the end.
        tail = LedgerTail(end if after is None else min(after, end))
        yield f": after movement {tail.cursor}\n\n"
        next_ping = next_check = loop.time()
        next_ping += PING_SECONDS
        next_check += caller.seconds_until_recheck()
        while not shutdown.stopping.is_set():
            bell.clear()
            async with database.unit_of_work(write=False) as uow:
                entries = await tail.read(uow.session)
            events = "".join(
                f"id: {e.id}\ndata: {payload(e.product_id, e.warehouse_id, e.balance, e.id)}\n\n"
                for e in entries
                if wanted(e.product_id, e.warehouse_id)
            )
            if events:
                yield events
                next_ping = loop.time() + PING_SECONDS
            if tail.more:
                continue
            now = loop.time()
            settles_in = tail.settles_in()
            timeout = min(
                POLL_SECONDS,
                next_ping - now,
                next_check - now,
                POLL_SECONDS if settles_in is None else settles_in,
            )
            # While a missing id holds the stream back, any change may be the one it waits for.
            ring = bell.any_change if tail.waiting else bell.matching
            if await _first_of(ring, shutdown.stopping, within=max(timeout, 0.0)):
                if shutdown.stopping.is_set():
                    return
                await asyncio.sleep(DEBOUNCE_SECONDS)  # let the rest of a burst commit
            now = loop.time()
            if now >= next_ping:
                yield ": ping\n\n"
                next_ping = now + PING_SECONDS
            if now >= next_check:
                try:
                    caller = await recheck()
                except (Unauthenticated, Forbidden) as exc:
                    yield f": {exc.detail}\n\n"
                    return
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

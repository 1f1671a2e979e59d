"""The stock WebSocket ``WS /ws/stock``: every committed change of a level, pushed as it happens.

Each message is ``{product_id, warehouse_id, quantity, reserved, available, movement_id}``
(``quantity`` is the level right after the change), optionally for one
product or warehouse, each level's changes in commit order (see
``inventory.sequencer``). Every socket reads its own bounded queue, so a slow
or dead client only ever holds itself up; one whose queue overflows, or that
takes no message for ``SEND_TIMEOUT_SECONDS``, is closed with 1013 (try
again later). The caller is checked again as ``inventory.stock.follower``
says, and the socket closed with 1008 and the refusal when that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket, WebSocketException
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from inventory.auth import signin
from inventory.auth.signin import Caller
from inventory.changefeed import SubscriberTooSlow, Subscription
from inventory.deps import ChangeFeedDep, SocketRoleRequirement, remembered_users, stream_slots
from inventory.errors import Forbidden, TooManyRequests, Unauthenticated
from inventory.kit.schemas import RefId
from inventory.models import Role
from inventory.stock.follower import (
    UNAVAILABLE,
    Recheck,
    UserWatch,
    Wanted,
    live_changes,
    payload,
)
from inventory.streams.slots import SlotKind

logger = logging.getLogger(__name__)

CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013
SEND_TIMEOUT_SECONDS = 10.0
TOO_SLOW = "Too far behind: reconnect and read faster."

router = APIRouter(tags=["stock"])

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


async def socket_slot(websocket: WebSocket, caller: ViewerSocket) -> AsyncIterator[None]:
    """One of the caller's live-stream slots while the socket is open; 1008 when all are taken."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(
                stream_slots(websocket).hold(SlotKind.live, caller.user_id)
            )
        except TooManyRequests as exc:
            await websocket.accept()
            raise WebSocketException(CLOSE_POLICY_VIOLATION, exc.detail) from None
        yield


@router.websocket("/ws/stock", dependencies=[Depends(socket_slot)])
async def stock_socket(
    websocket: WebSocket,
    caller: ViewerSocket,
    wanted: Annotated[Wanted, Depends(socket_filters)],
    feed: ChangeFeedDep,
) -> None:
    """Push every committed stock change (optionally one product's or warehouse's).

    Token in ``?token=``; closes with 1008 when it is missing or bad, when a
    filter is not an id, when the caller already holds
    ``INVENTORY_MAX_STREAMS_PER_USER`` live streams, and when a re-check of
    the caller fails; with 1013 when the client falls too far behind.
    """
    app = websocket.app.state
    remembered = remembered_users(websocket)

    async def recheck(caller: Caller) -> Caller:
        return await signin.recheck(caller, app.settings, app.db, remembered)

    async def send(text: str) -> None:
        await websocket.send_text(text)

    async with feed.subscribe() as changes:
        await websocket.accept()
        watch = remembered.watch_user(caller.user_id)
        pushing = asyncio.create_task(push_changes(changes, wanted, caller, recheck, watch, send))
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
    recheck: Recheck,
    watch: UserWatch,
    send: Callable[[str], Awaitable[None]],
    *,
    send_timeout: float = SEND_TIMEOUT_SECONDS,
) -> Closing:
    """Send the wanted changes until the client falls behind or may no longer watch."""
    try:
        async for change in live_changes(changes, wanted, caller, recheck, watch):
            text = payload(
                change.product_id,
                change.warehouse_id,
                change.quantity,
                change.reserved,
                change.movement_id,
            )
            try:
                async with asyncio.timeout(send_timeout):
                    await send(text)
            except TimeoutError:
                return Closing(CLOSE_TRY_AGAIN_LATER, TOO_SLOW)
    except (Unauthenticated, Forbidden) as exc:
        return Closing(CLOSE_POLICY_VIOLATION, exc.detail)
    except SQLAlchemyError as exc:
        logger.warning("stock socket: could not check its caller: %s", type(exc).__name__)
        return Closing(CLOSE_TRY_AGAIN_LATER, UNAVAILABLE)
    except SubscriberTooSlow:
        return Closing(CLOSE_TRY_AGAIN_LATER, TOO_SLOW)
    raise AssertionError("the change feed never ends")


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

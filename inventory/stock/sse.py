"""The stock event stream ``GET /stock/events``: Server-Sent Events of every committed change.

One event per change, ``id`` the movement id and ``data``
``{product_id, warehouse_id, quantity, reserved, available, movement_id}``, optionally for one
product or warehouse, in movement-id order; ``Last-Event-ID`` replays
exactly what a client missed (``inventory.stock.follower.follow_ledger``).
A ``: ping`` comment keeps an idle stream open. The caller is checked again
as the follower says; when that fails, or the database goes away, the
stream ends with a comment saying why.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import HTTPConnection

from inventory.auth import signin
from inventory.auth.signin import Caller
from inventory.deps import (
    ChangeFeedDep,
    DatabaseDep,
    LiveStreamSlot,
    ShutdownDep,
    StreamCaller,
    remembered_users,
    require_role,
)
from inventory.errors import (
    Forbidden,
    Unauthenticated,
    ValidationFailed,
    field_error,
)
from inventory.kit.schemas import RefId
from inventory.models import Role
from inventory.problems import problem_responses
from inventory.stock.follower import (
    UNAVAILABLE,
    Followed,
    Idle,
    Resumed,
    Wanted,
    follow_ledger,
    payload,
)
from inventory.stock.service import LedgerEntry
from inventory.streams.responses import GuardedStream

logger = logging.getLogger(__name__)

PING_SECONDS = 15.0
MAX_EVENT_ID = 2**63 - 1

router = APIRouter(prefix="/stock", tags=["stock"], dependencies=[require_role(Role.viewer)])

LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="The id of the last event received: the stream resumes right after it "
        "(EventSource sends it when it reconnects).",
    ),
]


@router.get(
    "/events",
    summary="Stock changes as Server-Sent Events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "One event per committed change: `id` is the movement id, `data` "
            "`{product_id, warehouse_id, quantity, reserved, available, movement_id}`; "
            "`: ping` every 15 s. "
            "Holds one of the caller's `INVENTORY_MAX_STREAMS_PER_USER` live-stream slots; a "
            "client that reads nothing for `INVENTORY_STREAM_IDLE_SECONDS` is disconnected.",
        },
        **problem_responses(422, 429),
    },
)
async def stock_events(
    connection: HTTPConnection,
    caller: StreamCaller,
    database: DatabaseDep,
    feed: ChangeFeedDep,
    shutdown: ShutdownDep,
    release: LiveStreamSlot,
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
    settings = connection.app.state.settings
    remembered = remembered_users(connection)

    async def recheck(caller: Caller) -> Caller:
        return await signin.recheck(caller, settings, database, remembered)

    followed = follow_ledger(
        database,
        feed,
        shutdown.stopping,
        Wanted(product_id, warehouse_id),
        after,
        caller,
        recheck,
        remembered.watch_user(caller.user_id),
        idle_seconds=PING_SECONDS,
    )
    return GuardedStream(
        _events(followed),
        idle_seconds=settings.stream_idle_seconds,
        before_end=release,
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


def _event(entry: LedgerEntry) -> str:
    data = payload(entry.product_id, entry.warehouse_id, entry.balance, entry.reserved, entry.id)
    return f"id: {entry.id}\ndata: {data}\n\n"


async def _events(followed: AsyncGenerator[Followed, None]) -> AsyncGenerator[str, None]:
    """What the follower finds, as the event stream's text.

    A refused caller or a database gone away ends the stream with a comment
    saying why (EventSource then reconnects with ``Last-Event-ID``, so nothing
    is lost).
    """
    try:
        async with contextlib.aclosing(followed):
            async for item in followed:
                if isinstance(item, Resumed):
                    yield f": after movement {item.after}\n\n"
                elif isinstance(item, Idle):
                    yield ": ping\n\n"
                else:
                    yield "".join(_event(entry) for entry in item)
    except (Unauthenticated, Forbidden) as exc:
        yield f": {exc.detail}\n\n"
    except SQLAlchemyError as exc:
        logger.warning("stock event stream: database unavailable: %s", type(exc).__name__)
        yield f": {UNAVAILABLE}\n\n"

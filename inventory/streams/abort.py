"""Aborting a connection from inside the app: the server side and the app side of it.

ASGI has no message for "drop this connection". An app that raises after the
response started makes uvicorn call ``transport.close()``, which only closes
once everything buffered has been written: to a client that stopped reading,
that is never, so the socket and megabytes of buffers stay. ``HttpProtocol``
(uvicorn's httptools protocol, which ``inventory serve`` and the gunicorn
workers run) therefore offers each request the ASGI extension
``inventory.abort``: a callable that resets the connection at once (RST,
buffers dropped). ``connection_aborter`` finds it; under a server without it
(tests through httpx's ASGITransport, another server) it is None and the
caller raises instead.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

ABORT = "inventory.abort"

Aborter = Callable[[], None]


def _reset(transport: Any) -> None:
    """Close ``transport`` with a reset: no FIN after the buffered data, no waiting for it."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError as exc:  # already gone: aborting is all that is left
            logger.debug("SO_LINGER not set: %s", exc)
    transport.abort()


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with ``inventory.abort`` in each request's scope."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        transport = self.transport
        self.scope["extensions"] = {ABORT: {"abort": lambda: _reset(transport)}}


def connection_aborter(scope: dict[str, Any] | Any) -> Aborter | None:
    """The server's way to abort this request's connection, if it offers one."""
    extension = (scope.get("extensions") or {}).get(ABORT)
    if not extension:
        return None
    aborter: Aborter = extension["abort"]
    return aborter

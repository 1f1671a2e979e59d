"""Plain ASGI middleware: request ids on every response, and the allowed Host names.

Written against raw ASGI rather than Starlette's request/response middleware
base class, which costs a route most of its throughput.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdMiddleware:
    """Accept the client's ``X-Request-ID`` when it is sane, otherwise make one.

    The id is stored in ``scope["state"]`` (so ``request.state.request_id``
    works everywhere, including the outermost 500 handler) and echoed on the
    response.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _ACCEPTABLE_ID.match(candidate):
                    request_id = candidate
                break
        if request_id is None:
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def _host_name(host_header: str) -> str:
    """The Host header without its port: ``api.example:8000`` -> ``api.example``."""
    if host_header.startswith("["):  # IPv6 literal, [::1]:8000
        return host_header.split("]", 1)[0] + "]"
    return host_header.split(":", 1)[0]


class AllowedHostsMiddleware:
    """Refuse requests whose Host is not allowed, with a problem+json 400.

    Same matching as Starlette's TrustedHostMiddleware (exact names, or
    ``*.example.com`` for subdomains), but the refusal speaks the API's error
    format. Not installed when the allowed hosts include ``*``.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.exact = {host.lower() for host in allowed_hosts if not host.startswith("*.")}
        self.suffixes = tuple(host[1:].lower() for host in allowed_hosts if host.startswith("*."))

    def allows(self, host: str) -> bool:
        host = host.lower()
        return host in self.exact or (bool(self.suffixes) and host.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.allows(_host_name(Headers(scope=scope).get("host", ""))):
            await self.app(scope, receive, send)
            return
        # Imported here: errors imports FastAPI, which this module otherwise needn't.
        from inventory.errors import problem

        response = problem(Request(scope), 400, "The Host header is not an allowed host.")
        await response(scope, receive, send)

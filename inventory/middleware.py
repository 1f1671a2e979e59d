"""Plain ASGI middleware: request ids, timing, access log and metrics, security headers,
body limits, the allowed Host names, and the app's password-hash gate for each request.

Written against raw ASGI rather than Starlette's request/response middleware
base class, which costs a route most of its throughput.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inventory import metrics, security
from inventory.csvio.upload import FRAMING_ALLOWANCE
from inventory.errors import PayloadTooLarge
from inventory.logs import ACCESS_LOGGER, request_id_var, user_id_var
from inventory.problems import problem, problem_response

REQUEST_ID_HEADER = "X-Request-ID"
_RAW_REQUEST_ID_HEADER = REQUEST_ID_HEADER.lower().encode()
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def add_headers(message: Message, *pairs: tuple[bytes, bytes]) -> None:
    """Append headers only this service sets to an ``http.response.start`` message
    (nothing to replace, so no search through the others: this runs per response)."""
    message["headers"] = [*message.get("headers", ()), *pairs]


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
            if name == _RAW_REQUEST_ID_HEADER:
                candidate = value.decode("latin-1")
                if _ACCEPTABLE_ID.match(candidate):
                    request_id = candidate
                break
        if request_id is None:
            request_id = secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id
        request_id_var.set(request_id)

        raw_id = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_headers(message, (_RAW_REQUEST_ID_HEADER, raw_id))
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
        response = problem(Request(scope), 400, "The Host header is not an allowed host.")
        await response(scope, receive, send)


access_log = logging.getLogger(ACCESS_LOGGER)


class ObservedRequests:
    """Time each HTTP request: ``X-Process-Time``, one access line, request metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[int, str] | None = None
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The request counter and latency histogram of one method, route and status
        (``labels()`` looks them up under a lock; routes are few, so keep them)."""
        key = (method, route, status)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = (
                metrics.REQUESTS.labels(method, route, str(status)),
                metrics.REQUEST_SECONDS.labels(method, route),
            )
        return found

    def template(self, scope: Scope) -> str:
        """The matched route's full path template (routers nest: a route knows only its
        own part), so metrics have one series per route, not per product id."""
        route = scope.get("route")
        if route is None:
            return "<unmatched>"
        if self._templates is None:
            self._templates = {
                id(context.original_route): str(context.path)
                for context in iter_route_contexts(scope["app"].routes)
            }
        return self._templates.get(id(route)) or str(getattr(route, "path", "<unknown>"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed = time.perf_counter() - started
                add_headers(message, (b"x-process-time", b"%.4f" % elapsed))
            await send(message)

        metrics.IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, timed_send)
        finally:
            metrics.IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = self.template(scope)
            method = scope["method"]
            requests, seconds = self.series(method, route, status)
            requests.inc()
            seconds.observe(elapsed)
            # The auth dependency put the caller here (a context variable set there
            # may not reach this far); every record of this line carries it.
            user_id_var.set(scope.get("state", {}).get("user_id"))
            access_log.info(
                "%s %s %s %.1f ms",
                method,
                scope["path"],
                status,
                elapsed * 1000,
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )


API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""For everything but the docs pages, which set their own (see ``inventory.docs``)."""
_API_POLICY = (b"content-security-policy", API_POLICY.encode())
_ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))


class SecurityHeaders:
    """``nosniff``, no referrer, and a Content-Security-Policy unless the page set one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                if any(name == b"content-security-policy" for name, _ in headers):
                    add_headers(message, *_ALWAYS)
                else:
                    add_headers(message, *_ALWAYS, _API_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HashGateScope:
    """Bind the app's ``HashGate`` (made by the lifespan) for the request, so every password
    hash a service runs for it counts against this app's bound."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = getattr(self.state, "hash_gate", None)
        if gate is None:  # the lifespan has not run
            await self.app(scope, receive, send)
            return
        binding = security.current_gate.set(gate)
        try:
            await self.app(scope, receive, send)
        finally:
            security.current_gate.reset(binding)


class BodyLimit:
    """Refuse request bodies over a limit with 413, declared or streamed.

    Upload routes get the (larger) upload limit; the import route checks the
    file itself, this only stops a body that could never be valid.
    (FastAPI's own ``max_body_size`` is set per app or per route when the code
    is imported; these limits come from settings and depend on the media type.)
    """

    def __init__(
        self, app: ASGIApp, max_body: int, max_upload: int, upload_paths: frozenset[str]
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        upload = scope["path"] in self.upload_paths
        limit = self.max_upload + FRAMING_ALLOWANCE if upload else self.max_body
        detail = f"The request body is larger than the limit of {limit} bytes."
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await problem_response(Request(scope), PayloadTooLarge(detail))(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException: FastAPI's body parsing passes it on (any other
                    # error becomes a 400) and the app's handler answers problem+json.
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, limited_receive, send)

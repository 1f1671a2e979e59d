"""The HTTP server's own settings, the same for ``inventory serve`` and gunicorn.

Every connection must get an answer. Past ``max_in_flight`` the app answers 503 itself
(``inventory.shedding``); these keep the server from dropping a connection before the
app sees it. uvicorn's own ``limit_concurrency`` stays unset: it counts idle keep-alive
connections too, and its 503 is plain text rather than the service's problem+json.
"""

from __future__ import annotations

import resource

BACKLOG = 2048
"""Connections the kernel holds for accepting. Beyond it a new connection's SYN is
dropped and the client retries it a second later: slower, never reset. The kernel caps
it at ``net.core.somaxconn`` (4096 on Linux 5.4 and later; raise it where it is 128)."""

KEEP_ALIVE_SECONDS = 5
"""How long an idle connection stays open for its next request. A proxy in front that
reuses connections must close idle ones sooner, or it may send a request on a connection
this end is closing."""


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; return the limit.

    Every connection is a file descriptor. At the limit the event loop (libuv under
    uvloop) accepts and at once closes new connections, which their clients see as a
    reset without an answer. Containers often start with a soft limit of 1024 and a much
    higher hard one. Worker processes inherit the raised limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20  # Linux's usual nr_open
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target

"""Tell responses that never end by themselves (event streams) that the server is stopping.

On SIGTERM or SIGINT uvicorn stops accepting connections, then waits for the
open responses to finish, and cancels them only after its graceful timeout
(10 s, see ``inventory serve``); the application hears nothing until then.
An event stream never finishes, so every shutdown would take the full
timeout. The service therefore listens for the same signals next to
uvicorn: its handler sets ``stopping``, then calls uvicorn's, which goes on
as before. (WebSockets need none of this: uvicorn closes them with 1012.)

Nothing is installed where there is no Python handler to chain to (the
signal is not being handled gracefully anyway) or off the main thread (only
it may set handlers).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ShutdownSignal:
    """``stopping`` is set once the process is asked to stop."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self._previous: dict[signal.Signals, Any] = {}

    def install(self) -> None:
        """Chain a handler in front of the current one of each signal (call from the loop)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for signum in SIGNALS:
            previous = signal.getsignal(signum)
            if not callable(previous):
                continue

            def handler(number: int, frame: FrameType | None, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self.stopping.set)
                previous(number, frame)

            signal.signal(signum, handler)
            self._previous[signum] = previous

    def uninstall(self) -> None:
        """Put the handlers back as they were, and let anything still waiting go."""
        self.stopping.set()
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

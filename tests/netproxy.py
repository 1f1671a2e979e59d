"""A TCP relay to a real server that a test can take down and bring back on the same port.

Stopping it refuses new connections and cuts the open ones, which is what the
service sees when its broker goes away; hanging it cuts them and then accepts
connections that never get an answer, like a server that froze. The server
itself is shared by every test run on the machine, so it is never touched.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class TcpRelay:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._hanging = False
        self._frozen: set[socket.socket] = set()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def hang(self) -> None:
        """Freeze: what is sent on open connections goes nowhere, new ones get no answer."""
        with self._lock:
            self._hanging = True
            self._frozen |= self._open

    def resume(self) -> None:
        """Relay new connections again. The frozen ones stay frozen, never reset, as
        connections to a host that vanished: only a timeout on the client ends them."""
        with self._lock:
            self._hanging = False

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        self._cut()

    def _cut(self) -> None:
        with self._lock:
            open_now, self._open = self._open, set()
            self._frozen = set()
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> TcpRelay:
        self.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            with self._lock:
                if self._hanging:
                    self._open.add(client)
                    self._frozen.add(client)
                    continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if source not in self._frozen and sink not in self._frozen:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

"""A redis-server of a test's own, on a spare port, that the test may stop and start again.

The shared test Redis serves every run on this machine at once; a test that
counts Redis commands, or stops Redis, needs one nobody else uses.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.conftest import IN_CI


class RedisServer:
    """``redis-server`` without persistence: a restart starts empty, as after a crash."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=5)

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            reason = "redis-server is not installed"
            if IN_CI:
                pytest.fail(f"{reason}; CI requires it", pytrace=False)
            pytest.skip(reason)
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command line
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        with self.client() as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start on {self.port}") from None
                    time.sleep(0.05)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Send ``sig`` and wait for the process to end (killing it after 10 s)."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    """A running redis-server on a spare port, stopped at the end whatever happened."""
    server = RedisServer(spare_port(), workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)

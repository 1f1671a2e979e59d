"""Run the ``inventory`` console script as a real process, as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from inventory.config import Settings

INVENTORY = str(Path(sys.executable).with_name("inventory"))


def environment(**variables: str) -> dict[str, str]:
    """This process's environment without any INVENTORY_ setting, plus ``variables``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INVENTORY_")}
    return clean | variables


def server_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    """What a real server needs to share the tests' database, Redis and signing key."""
    env = {
        "INVENTORY_DATABASE_URL": settings.database_url,
        "INVENTORY_SECRET_KEY": settings.secret_key.get_secret_value(),
        "INVENTORY_REDIS_KEY_PREFIX": settings.redis_key_prefix,
    }
    if settings.redis_url:
        env["INVENTORY_REDIS_URL"] = settings.redis_url
    return env | overrides


def run(
    *args: str, database_url: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run one command against ``database_url``, with only the settings given here.

    A new session detaches it from any controlling terminal, so a password
    prompt reads ``stdin`` rather than the developer's terminal. It runs in a
    directory of its own: a signing key generated there is removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="inventory-run-") as workdir:
        return subprocess.run(  # noqa: S603 - our own console script
            [INVENTORY, *args],
            cwd=workdir,
            env=environment(INVENTORY_DATABASE_URL=database_url, **env),
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=True,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def peak_rss_bytes(self) -> int:
        """The process's peak resident memory so far (Linux VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc status")


@contextmanager
def serving(*args: str, **env: str) -> Iterator[Server]:
    """``inventory serve ARGS`` on a free port, yielded once /health answers.

    Its output goes to a file, not a pipe: a pipe nobody reads fills up with
    access log lines and then blocks the server. It runs in a directory of its
    own, like ``run``.
    """
    port = _free_port()
    with (
        tempfile.TemporaryFile() as log,
        tempfile.TemporaryDirectory(prefix="inventory-serve-") as workdir,
        subprocess.Popen(  # noqa: S603 - our own console script
            [INVENTORY, "serve", "--port", str(port), *args],
            cwd=workdir,
            env=environment(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
        ) as server,
    ):
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.terminate()
                    server.wait(timeout=30)
                    log.seek(0)
                    pytest.fail(f"server did not come up: {log.read().decode(errors='replace')}")
                try:
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield Server(base, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)

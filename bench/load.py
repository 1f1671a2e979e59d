"""Loading a server from another process: start it, drive it with wrk or curl, read its RSS."""

from __future__ import annotations

import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

RUNS = 3
WARM_UP_SECONDS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_wrk() -> None:
    """wrk from Debian's packages, installed when missing."""
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)  # noqa: S607


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int) -> Iterator[int]:
    """Start a server; yield its pid once it answers; stop it afterwards."""
    with subprocess.Popen(  # noqa: S603 - our own commands
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as process:
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command} did not start")
                try:
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield process.pid
        finally:
            process.terminate()
            process.wait(timeout=60)


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory of ``pid`` and its children (workers), in MB."""
    pids = [pid, *_children(pid)]
    total = 0.0
    for one in pids:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(child) for child in children]
    return found + [grandchild for child in found for grandchild in _children(child)]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(
    url: str,
    headers: dict[str, str],
    seconds: int,
    connections: int = 64,
    body: str | None = None,
) -> dict[str, float]:
    """One wrk run (1 thread); a POST of ``body`` when given."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if body is not None:
            script.write(f'wrk.method = "POST"\nwrk.body = [==[{body}]==]\n')
            script.flush()
            command += ["-s", script.name]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return {"rate": rps, "p50_ms": p50, "p99_ms": p99}


def measure(
    url: str,
    headers: dict[str, str],
    seconds: int,
    connections: int = 64,
    body: str | None = None,
) -> dict[str, float]:
    """After a warm-up, ``RUNS`` runs; the one with the median rate."""
    wrk(url, headers, WARM_UP_SECONDS, connections, body)
    runs = [wrk(url, headers, seconds, connections, body) for _ in range(RUNS)]
    median = statistics.median(r["rate"] for r in runs)
    return min(runs, key=lambda r: abs(r["rate"] - median))


def timed_download(url: str, headers: dict[str, str]) -> float:
    """Seconds curl takes to fetch ``url`` into /dev/null (a separate process)."""
    command = ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{time_total}", url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    return float(out)

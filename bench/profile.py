"""Where a served case spends its time: py-spy samples the server while wrk loads it.

With ``BENCH_PROFILE=1`` each server case gets one more wrk run, after the
measured ones (sampling slows the server, so profiled runs are never timed),
with ``py-spy record`` attached to the server and its workers. The raw stacks
are written beside the results (for flame graphs: speedscope.app or
flamegraph.pl read them), and a summary of self time by library is printed.
"""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

# Self time of a sample goes to the first of these its innermost frame's file names.
LIBRARIES = (
    ("our code", ("/inventory/", "/graphql_schema/")),
    ("SQLAlchemy", ("/sqlalchemy/",)),
    ("asyncpg", ("/asyncpg/",)),
    ("graphql-core", ("/graphql/",)),
    ("Strawberry", ("/strawberry/",)),
    ("FastAPI", ("/fastapi/",)),
    ("Starlette", ("/starlette/",)),
    ("pydantic", ("/pydantic",)),
    ("uvicorn", ("/uvicorn/",)),
    ("logging", ("/logging/",)),
    ("prometheus", ("/prometheus_client/",)),
    ("redis", ("/redis/", "hiredis")),
    ("cachetools", ("/cachetools/",)),
    ("asyncio / event loop", ("/asyncio/", "uvloop", "/selectors.py")),
    ("Python's standard library", ("/lib/python3", "<frozen")),
)


PY_SPY = Path(sys.executable).with_name("py-spy")
"""Installed beside this interpreter by ``make install`` (a dev dependency)."""


def available() -> bool:
    return PY_SPY.exists()


def start(pid: int, seconds: int, output: Path) -> subprocess.Popen[bytes]:
    """Begin sampling ``pid`` and its children for ``seconds``; raw stacks to ``output``."""
    command = [str(PY_SPY), "record", "--pid", str(pid), "--subprocesses"]
    command += ["--duration", str(seconds)]
    command += ["--rate", "250", "--format", "raw", "--output", str(output), "--full-filenames"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


def summary(raw: Path, top: int = 8) -> dict[str, object]:
    """Self time by library, and the functions with the most self time, as shares."""
    by_library: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        leaf = stack.rsplit(";", 1)[-1]
        by_function[leaf] += samples
        by_library[_library(leaf)] += samples
    if not total:
        return {}
    return {
        "samples": total,
        "self_time_by_library": {k: round(v / total, 3) for k, v in by_library.most_common()},
        "top_functions": {k: round(v / total, 3) for k, v in by_function.most_common(top)},
    }


def _library(frame: str) -> str:
    for name, markers in LIBRARIES:
        if any(marker in frame for marker in markers):
            return name
    return "other"


def describe(case: str, found: dict[str, object]) -> str:
    if not found:
        return f"{case}: no samples"
    libraries = found["self_time_by_library"]
    assert isinstance(libraries, dict)
    shares = ", ".join(f"{name} {share:.0%}" for name, share in list(libraries.items())[:8])
    return f"{case} ({found['samples']} samples): {shares}"

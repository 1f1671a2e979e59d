"""Gunicorn settings for the production command (the Dockerfile's CMD).

``gunicorn -c python:inventory.gunicorn_conf "inventory.main:create_app()"``:
uvicorn workers (``WEB_CONCURRENCY``, default 2 x CPUs + 1) on ``PORT``, every
log line in the service's format (JSON in production), Prometheus metrics
summed across workers, and, with several workers and no Redis, the same rule
as ``inventory serve --workers N`` (``inventory.worker_count``: process-local
caches off in every worker). Nothing here imports prometheus_client: it must
see ``PROMETHEUS_MULTIPROC_DIR`` when it is first imported, in the workers.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from uvicorn_worker import UvicornWorker

from inventory.config import Settings, describe_invalid, load_settings
from inventory.logs import configure_startup_logging, logging_config
from inventory.serving import BACKLOG, KEEP_ALIVE_SECONDS, raise_open_files_limit
from inventory.streams.abort import HttpProtocol
from inventory.worker_count import share_nothing_locally


class Worker(UvicornWorker):  # type: ignore[misc] # untyped base
    """uvloop and httptools; no uvicorn access log (the app logs each request itself)."""

    CONFIG_KWARGS = {  # noqa: RUF012 - the base class's attribute, overridden
        "loop": "uvloop",
        "http": HttpProtocol,  # httptools, able to abort a stalled download
        "access_log": False,
        "proxy_headers": True,
        "timeout_graceful_shutdown": 25,  # under gunicorn's graceful_timeout below
    }


def _settings() -> Settings:
    """Bad settings end the start with one line in the service's format, not
    gunicorn's plain "Failed to read config file" and a traceback."""
    try:
        return load_settings()
    except ValueError as exc:
        configure_startup_logging(None)
        logging.getLogger("inventory.gunicorn").critical(
            "invalid configuration: %s", describe_invalid(exc)
        )
        raise SystemExit(1) from None


settings = _settings()
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# The CPUs this container may use, not the host's. Each worker holds up to
# INVENTORY_DB_POOL_SIZE + INVENTORY_DB_MAX_OVERFLOW connections: size both to the database.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * len(os.sched_getaffinity(0)) + 1)
worker_class = "inventory.gunicorn_conf.Worker"
graceful_timeout = 30
timeout = 60
keepalive = KEEP_ALIVE_SECONDS
backlog = BACKLOG
raise_open_files_limit()  # here, in the master: the workers inherit it
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None
errorlog = "-"
logconfig_dict = logging_config(settings)

# Every worker writes its metrics here; /metrics on any of them sums them all.
metrics_dir = Path(
    os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="inventory-metrics-")
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


def on_starting(server: Any) -> None:
    """Before any worker is forked: the rule for several workers without Redis, on the
    final worker count (``-w`` on the command line included); and metrics from zero,
    since files left by an earlier run would be summed in."""
    if note := share_nothing_locally(settings, server.cfg.workers):
        server.log.warning(note)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for leftover in metrics_dir.iterdir():
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()


def child_exit(_server: Any, worker: Any) -> None:
    """A worker that is gone no longer counts towards live gauges (in-flight, pool)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

"""The Celery application, configured from settings, shared by senders and workers.

Job state lives in our database, so there is no result backend. Messages are
JSON only. A job is acknowledged after it ran (``acks_late``) and handed back
when its worker dies (``reject_on_worker_lost``); each worker process takes one
message at a time, so a redelivered job does not wait behind a prefetched one.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.schedules import crontab
from kombu import Queue

from inventory.config import Settings

IMPORT_PRODUCTS = "inventory.import_products"
REPORT_LOW_STOCK = "inventory.report_low_stock"
SWEEP_JOBS = "inventory.sweep_jobs"
PURGE_EXPIRED = "inventory.purge_expired"
CHECK_LEDGER = "inventory.check_ledger"
EXPIRE_RESERVATIONS = "inventory.expire_reservations"

CONNECT_TIMEOUT_SECONDS = 1.0
REDIS_SOCKET_TIMEOUT_SECONDS = 5.0  # above the transport's 1 s BRPOP polls
SWEEP_EVERY_SECONDS = 60.0
PURGE_EVERY_SECONDS = 60.0 * 60
LEDGER_CHECK_HOUR_UTC = 3
EXPIRE_RESERVATIONS_EVERY_SECONDS = 60.0
"""Expiry itself needs no write; this only records it, so a minute late is harmless."""

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # A periodic run that waited past its period is dropped: the next one does its work.
    "sweep-stale-jobs": {
        "task": SWEEP_JOBS,
        "schedule": SWEEP_EVERY_SECONDS,
        "options": {"expires": SWEEP_EVERY_SECONDS},
    },
    "purge-expired": {
        "task": PURGE_EXPIRED,
        "schedule": PURGE_EVERY_SECONDS,
        "options": {"expires": PURGE_EVERY_SECONDS},
    },
    "expire-reservations": {
        "task": EXPIRE_RESERVATIONS,
        "schedule": EXPIRE_RESERVATIONS_EVERY_SECONDS,
        "options": {"expires": EXPIRE_RESERVATIONS_EVERY_SECONDS},
    },
    "check-ledger-nightly": {
        "task": CHECK_LEDGER,
        "schedule": crontab(hour=LEDGER_CHECK_HOUR_UTC, minute=0),
        "options": {"expires": 60.0 * 60},
    },
}


def queue_name(settings: Settings) -> str:
    """One queue per deployment, so deployments (and test runs) can share a broker."""
    return f"{settings.redis_key_prefix}.jobs"


def maintenance_queue_name(settings: Settings) -> str:
    """Maintenance has its own queue, so it is not stuck behind a backlog of imports."""
    return f"{settings.redis_key_prefix}.maintenance"


def transport_options(settings: Settings) -> dict[str, Any]:
    url = settings.broker_url or ""
    if url.startswith(("redis://", "rediss://")):
        visibility = settings.broker_visibility_timeout_seconds
        # Workers look for abandoned jobs every fifth of that (kombu: interval x throttle).
        sweep = min(100, max(1, visibility // 5))
        return {
            "global_keyprefix": f"{settings.redis_key_prefix}:",
            "visibility_timeout": visibility,
            "unacked_restore_interval": min(10, sweep),
            "unacked_restore_throttle": max(1, sweep // 10),
            "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
            # A Redis that accepts and never answers must not hold a sender forever.
            "socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
            "socket_keepalive": True,
        }
    # AMQP: the broker confirms each message, so "sent" means stored, not buffered.
    return {"confirm_publish": True}


def create_celery(settings: Settings) -> Celery:
    """A Celery app for ``settings.broker_url`` (which must be set)."""
    if not settings.broker_url:
        raise ValueError("INVENTORY_BROKER_URL is not set: jobs run in the API process")
    app = Celery("inventory", broker=settings.broker_url, set_as_current=False)
    limit = settings.job_time_limit_seconds
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_expires=None,  # no result backend: nothing for beat to clean up
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=limit,
        task_time_limit=limit + 60,
        task_default_queue=queue_name(settings),
        # `inventory worker` consumes both; `-Q` picks one for dedicated workers.
        task_queues=[Queue(queue_name(settings)), Queue(maintenance_queue_name(settings))],
        task_routes={
            name: {"queue": maintenance_queue_name(settings)}
            for name in (SWEEP_JOBS, PURGE_EXPIRED, CHECK_LEDGER, EXPIRE_RESERVATIONS)
        },
        broker_connection_timeout=CONNECT_TIMEOUT_SECONDS,
        broker_connection_retry_on_startup=True,
        # A sender never waits long for a pooled connection (senders abandoned at a
        # deadline may still hold one until their socket times out).
        broker_pool_acquire_timeout=CONNECT_TIMEOUT_SECONDS,
        broker_transport_options=transport_options(settings),
        # A worker cut off from the broker stops its jobs: the broker hands them out again.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # Flower (or `celery events`) can follow the jobs.
        worker_send_task_events=True,
        task_send_sent_event=True,
        beat_schedule=BEAT_SCHEDULE,
        timezone="UTC",
        enable_utc=True,
    )
    return app

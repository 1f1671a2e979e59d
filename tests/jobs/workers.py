"""Real Celery workers for the job tests: brokers, worker processes, a deployment's settings."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from kombu import Connection, Exchange, Queue

from inventory.config import Settings
from inventory.jobs.broker import maintenance_queue_name, queue_name
from tests.processes import INVENTORY, environment, server_environment

BROKERS = {
    "rabbitmq": os.environ.get(
        "INVENTORY_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"
    ),
    "redis": os.environ.get("INVENTORY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
}
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_broker(url: str) -> None:
    """Skip (fail under CI=true) when the broker is not there."""
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.connect()
    except Exception as exc:
        reason = f"broker at {url} unreachable ({type(exc).__name__}: {exc})"
        if IN_CI:
            pytest.fail(f"{reason}; CI requires it", pytrace=False)
        pytest.skip(reason)


@dataclass(frozen=True)
class Deployment:
    """One test's service: its own queue and key prefix on a shared broker."""

    broker_url: str
    env: dict[str, str]
    log_dir: Path

    @property
    def prefix(self) -> str:
        return self.env["INVENTORY_REDIS_KEY_PREFIX"]

    def with_broker(self, url: str) -> Deployment:
        return Deployment(url, self.env | {"INVENTORY_BROKER_URL": url}, self.log_dir)


def deployment(settings: Settings, broker_url: str, log_dir: Path) -> Deployment:
    # Under the run's prefix, so the run's Redis clean-up removes what the broker left.
    prefix = f"{settings.redis_key_prefix}:jobs-{uuid.uuid4().hex[:8]}"
    env = server_environment(
        settings,
        INVENTORY_BROKER_URL=broker_url,
        INVENTORY_REDIS_KEY_PREFIX=prefix,
        # A job whose worker died comes back after this long on a Redis broker.
        INVENTORY_BROKER_VISIBILITY_TIMEOUT_SECONDS="15",
    )
    return Deployment(broker_url, env, log_dir)


def remove_queue(deployed: Deployment, broker_url: str) -> None:
    """Delete the test's queue (RabbitMQ) or keys (Redis) from the shared broker."""
    settings = Settings(redis_key_prefix=deployed.prefix)
    names = (queue_name(settings), maintenance_queue_name(settings))
    if broker_url.startswith("redis"):
        client = redis.Redis.from_url(broker_url)
        for key in client.scan_iter(match=f"{deployed.prefix}:*"):
            client.delete(key)
        client.close()
        return
    with Connection(broker_url, connect_timeout=3) as connection:
        channel = connection.default_channel
        for name in names:
            Queue(name)(channel).delete()
            Exchange(name)(channel).delete()


@dataclass(frozen=True)
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def pool_pids(self) -> set[int]:
        """The worker's pool processes (its children)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def celery_worker(deployed: Deployment, name: str) -> Iterator[Worker]:
    """``inventory worker`` (prefork, one pool process), yielded once it consumes."""
    log = deployed.log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
    command = [
        INVENTORY,
        "worker",
        "--concurrency=1",
        f"--hostname={name}@%h",
        "--without-mingle",
        "--without-gossip",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            command,
            env=environment(**deployed.env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a kill takes the pool too
        )
    worker = Worker(process, log)
    try:
        deadline = time.monotonic() + 60
        while " ready." not in worker.output():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker {name} did not start:\n{worker.output()}")
            time.sleep(0.1)
        yield worker
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def kill_hard(worker: Worker) -> None:
    """SIGKILL the worker and its pool at once, as a machine that loses power."""
    os.killpg(worker.pid, signal.SIGKILL)
    worker.process.wait(timeout=10)

"""Run one import job in a WorkerRuntime, as a Celery pool process would, and interrupt it.

``python -m tests.jobs.interrupted_run JOB_ID time-limit|exit``: once the job is
validating, send this process the signal Celery would (SIGUSR1 for the soft
time limit; SIGTERM, made SystemExit as billiard does, for a process told to
go) and print what the runtime did.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from inventory.csvio.jobs import runs
from inventory.jobs import runtime


def main(job_id: int, mode: str) -> None:
    def exit_now(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(15)

    signal.signal(signal.SIGTERM, exit_now)
    sent: list[int] = []

    def interrupt(done: int, _total: int) -> None:
        if done and not sent:
            sent.append(done)
            os.kill(os.getpid(), signal.SIGUSR1 if mode == "time-limit" else signal.SIGTERM)

    work = runtime.current()
    try:
        work.run(
            lambda db: runs.run_import_job(db, job_id, worker="runtime", on_progress=interrupt)
        )
        print("finished")
    except runtime.JobTimeLimitExceeded:
        print("time limit")
    except SystemExit:
        print("exited")
    finally:
        runtime.close()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])

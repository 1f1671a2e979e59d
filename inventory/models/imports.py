"""Import jobs: an uploaded file, its state, and what was wrong with it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from inventory.models.base import Base
from inventory.models.columns import SQLITE_NO_ID_REUSE, IdMixin, UTCDateTime, utcnow


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class ImportJob(IdMixin, Base):
    """One upload. The file lives here, so any worker on any machine can process it."""

    __tablename__ = "import_jobs"
    __table_args__ = SQLITE_NO_ID_REUSE

    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str | None] = mapped_column(String(255))
    dry_run: Mapped[bool] = mapped_column(default=False)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status", native_enum=False, create_constraint=True, length=16),
        index=True,
    )
    # Deferred: listing or polling a job never loads the file.
    content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    rows_total: Mapped[int] = mapped_column(default=0)
    rows_done: Mapped[int] = mapped_column(default=0)
    errors: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of {row, column, message}."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    """How many runs have taken the job; the number is the current run's fencing token."""
    handed_back: Mapped[int] = mapped_column(default=0, server_default="0")
    """Runs that gave the job back unharmed (the database was away): not held against it."""
    worker: Mapped[str | None] = mapped_column(String(255))
    """Where the latest run took it: ``host:pid`` of the process."""

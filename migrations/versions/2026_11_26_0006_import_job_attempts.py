"""Import job attempts and worker: a redelivered job knows it is a retry, and where it ran.

``attempts`` counts the runs that took the job; each run writes its result only
while the count is still its own, so a run that was given up on can never
finish over the run that replaced it. ``handed_back`` counts the runs that
gave the job back because the database was away (they do not count against
its limit of runs). ``worker`` names the process (host:pid).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_NO_ID_REUSE = {"sqlite_autoincrement": True}


def upgrade() -> None:
    op.add_column(
        "import_jobs",
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "import_jobs",
        sa.Column("handed_back", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("import_jobs", sa.Column("worker", sa.String(length=255), nullable=True))


def downgrade() -> None:
    # Batch mode rebuilds the table on SQLite: keep AUTOINCREMENT (ids never reused).
    with op.batch_alter_table("import_jobs", table_kwargs=SQLITE_NO_ID_REUSE) as batch:
        batch.drop_column("worker")
        batch.drop_column("handed_back")
        batch.drop_column("attempts")

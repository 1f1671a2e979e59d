"""Level movement counts: how many ledger entries each stock level has.

Existing levels get the count of their movements (one correlated subquery,
the same SQL on SQLite and PostgreSQL), then the column becomes NOT NULL. On
SQLite that last step rebuilds the table (Alembic's batch mode).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_NO_ID_REUSE = {"sqlite_autoincrement": True}
BACKFILL = """
UPDATE stock_levels SET movement_count = (
    SELECT COUNT(*)
    FROM stock_movements
    WHERE stock_movements.product_id = stock_levels.product_id
      AND stock_movements.warehouse_id = stock_levels.warehouse_id
)
"""


def upgrade() -> None:
    op.add_column("stock_levels", sa.Column("movement_count", sa.BigInteger(), nullable=True))
    op.execute(BACKFILL)
    # Batch mode rebuilds the table on SQLite: keep AUTOINCREMENT (ids never reused).
    with op.batch_alter_table("stock_levels", table_kwargs=SQLITE_NO_ID_REUSE) as batch:
        batch.alter_column("movement_count", existing_type=sa.BigInteger(), nullable=False)


def downgrade() -> None:
    # Batch mode rebuilds the table on SQLite: keep AUTOINCREMENT (ids never reused).
    with op.batch_alter_table("stock_levels", table_kwargs=SQLITE_NO_ID_REUSE) as batch:
        batch.drop_column("movement_count")

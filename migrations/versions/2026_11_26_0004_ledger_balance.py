"""Ledger balance: each movement records the level's quantity right after it.

Existing rows get the running sum of their level's quantities up to and
including themselves (one correlated subquery, the same SQL on SQLite and
PostgreSQL), then the column becomes NOT NULL. On SQLite that last step
rebuilds the table (Alembic's batch mode).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_NO_ID_REUSE = {"sqlite_autoincrement": True}
BACKFILL = """
UPDATE stock_movements SET balance = (
    SELECT SUM(earlier.quantity)
    FROM stock_movements AS earlier
    WHERE earlier.product_id = stock_movements.product_id
      AND earlier.warehouse_id = stock_movements.warehouse_id
      AND earlier.id <= stock_movements.id
)
"""


def upgrade() -> None:
    op.add_column("stock_movements", sa.Column("balance", sa.BigInteger(), nullable=True))
    op.execute(BACKFILL)
    # Batch mode rebuilds the table on SQLite: keep AUTOINCREMENT (ids never reused).
    with op.batch_alter_table("stock_movements", table_kwargs=SQLITE_NO_ID_REUSE) as batch:
        batch.alter_column("balance", existing_type=sa.BigInteger(), nullable=False)


def downgrade() -> None:
    # Batch mode rebuilds the table on SQLite: keep AUTOINCREMENT (ids never reused).
    with op.batch_alter_table("stock_movements", table_kwargs=SQLITE_NO_ID_REUSE) as batch:
        batch.drop_column("balance")

"""Reservations and counts; the latest hold on each level; the ledger indexed by time.

``reservations`` and ``reservation_lines`` hold promised stock: a line's
``held_until`` is its expiry while it holds units, null once it no longer
does. ``stock_levels.holds_until`` is the latest expiry of any hold taken on
the level, so a decrement can tell in its own row whether a hold may be
live, and each ledger entry keeps the units held at its level right after it.
``stock_counts`` and ``stock_count_lines`` record stocktakes. The
ledger's (product, warehouse) index gains ``created_at`` and ``id``, so the
balance of a level at any moment is one step along it, and a second index
orders each product's entries in time across its warehouses (its history).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOVEMENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "held",
                "confirmed",
                "released",
                "expired",
                name="reservation_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_reservations_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_reservations_reference"), "reservations", ["reference"])
    op.create_index("ix_reservations_status_expires_at", "reservations", ["status", "expires_at"])
    op.create_table(
        "reservation_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("held_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("movement_id", MOVEMENT_ID, nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_reservation_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["movement_id"],
            ["stock_movements.id"],
            name=op.f("fk_reservation_lines_movement_id_stock_movements"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_reservation_lines_product_id_products"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name=op.f("fk_reservation_lines_reservation_id_reservations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_reservation_lines_warehouse_id_warehouses"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservation_lines")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_reservation_lines_product_id_warehouse_id_held_until",
        "reservation_lines",
        ["product_id", "warehouse_id", "held_until"],
    )
    op.create_index(
        op.f("ix_reservation_lines_reservation_id"), "reservation_lines", ["reservation_id"]
    )
    op.create_table(
        "stock_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "finished",
                "cancelled",
                name="count_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_stock_counts_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_stock_counts_warehouse_id_warehouses"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_counts")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_stock_counts_status"), "stock_counts", ["status"])
    op.create_index(op.f("ix_stock_counts_warehouse_id"), "stock_counts", ["warehouse_id"])
    op.create_table(
        "stock_count_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("count_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=False),
        sa.Column("counted", sa.Integer(), nullable=True),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("difference", sa.Integer(), nullable=True),
        sa.CheckConstraint("counted >= 0", name=op.f("ck_stock_count_lines_counted_not_negative")),
        sa.ForeignKeyConstraint(
            ["count_id"],
            ["stock_counts.id"],
            name=op.f("fk_stock_count_lines_count_id_stock_counts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_stock_count_lines_product_id_products"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_count_lines")),
        sa.UniqueConstraint(
            "count_id", "product_id", name=op.f("uq_stock_count_lines_count_id_product_id")
        ),
        sqlite_autoincrement=True,
    )
    op.add_column(
        "stock_levels", sa.Column("holds_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("stock_movements", sa.Column("reserved", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_stock_movements_level_created_at",
        "stock_movements",
        ["product_id", "warehouse_id", "created_at", "id"],
    )
    op.create_index(
        "ix_stock_movements_product_created_at",
        "stock_movements",
        ["product_id", "created_at", "id"],
    )
    # Its leading columns serve everything the old index served.
    op.drop_index(op.f("ix_stock_movements_product_id_warehouse_id"), table_name="stock_movements")


def downgrade() -> None:
    op.create_index(
        op.f("ix_stock_movements_product_id_warehouse_id"),
        "stock_movements",
        ["product_id", "warehouse_id"],
    )
    op.drop_index("ix_stock_movements_product_created_at", table_name="stock_movements")
    op.drop_index("ix_stock_movements_level_created_at", table_name="stock_movements")
    # A plain DROP COLUMN (SQLite 3.35+), not a batch rebuild of a table others point at.
    op.drop_column("stock_movements", "reserved")
    op.drop_column("stock_levels", "holds_until")
    op.drop_table("stock_count_lines")
    op.drop_table("stock_counts")
    op.drop_table("reservation_lines")
    op.drop_table("reservations")

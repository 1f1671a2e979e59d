"""Purchase and sales orders, their gap-free numbers, and what stock is worth.

``purchase_orders`` and ``sales_orders`` with their lines; ``order_numbers``
keeps the last number given per kind. A sales order's allocations are
reservation lines without expiry: ``reservations.expires_at`` may now be
null, and reservations and their lines point at the order and line they
hold for. Stock levels gain ``on_order`` (units placed, not yet received)
and ``average_cost``; each ledger entry keeps the cost its units came in at
and the level's average cost right after it, so the value at any moment
needs no replay.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 23:59:21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite rebuilds a table to alter it; the copy must keep AUTOINCREMENT (ids never reused).
NO_ID_REUSE = {"sqlite_autoincrement": True}


def upgrade() -> None:
    op.create_table(
        "order_numbers",
        sa.Column("kind", sa.String(length=2), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_order_numbers")),
    )
    op.create_table(
        "purchase_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "placed",
                "partially_received",
                "received",
                "cancelled",
                name="purchase_order_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("supplier_id", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("expected_on", sa.Date(), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.id"],
            name=op.f("fk_purchase_orders_supplier_id_suppliers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_purchase_orders_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_purchase_orders_warehouse_id_warehouses"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_purchase_orders_number")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_purchase_orders_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_purchase_orders_supplier_id"), ["supplier_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_purchase_orders_warehouse_id"), ["warehouse_id"], unique=False
        )

    op.create_table(
        "sales_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "confirmed",
                "partially_shipped",
                "shipped",
                "cancelled",
                name="sales_order_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("customer_reference", sa.String(length=100), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sales_orders_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_sales_orders_number")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("sales_orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sales_orders_customer_reference"), ["customer_reference"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sales_orders_status"), ["status"], unique=False)

    op.create_table(
        "purchase_order_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_cost", sa.Numeric(precision=16, scale=4), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_purchase_order_lines_quantity_positive")),
        sa.CheckConstraint(
            "received >= 0 AND received <= quantity",
            name=op.f("ck_purchase_order_lines_received_in_range"),
        ),
        sa.CheckConstraint(
            "unit_cost >= 0", name=op.f("ck_purchase_order_lines_unit_cost_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["purchase_orders.id"],
            name=op.f("fk_purchase_order_lines_order_id_purchase_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_purchase_order_lines_product_id_products"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_order_lines")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("purchase_order_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_purchase_order_lines_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_purchase_order_lines_product_id"), ["product_id"], unique=False
        )

    op.create_table(
        "sales_order_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("allocated", sa.Integer(), nullable=False),
        sa.Column("shipped", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_sales_order_lines_quantity_positive")),
        sa.CheckConstraint(
            "shipped >= 0 AND shipped <= allocated AND allocated <= quantity",
            name=op.f("ck_sales_order_lines_allocation_in_range"),
        ),
        sa.CheckConstraint(
            "unit_price >= 0", name=op.f("ck_sales_order_lines_unit_price_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["sales_orders.id"],
            name=op.f("fk_sales_order_lines_order_id_sales_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_sales_order_lines_product_id_products"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_sales_order_lines_warehouse_id_warehouses"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_order_lines")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("sales_order_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sales_order_lines_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sales_order_lines_product_id"), ["product_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sales_order_lines_warehouse_id"), ["warehouse_id"], unique=False
        )

    with op.batch_alter_table(
        "reservation_lines", schema=None, table_kwargs=NO_ID_REUSE
    ) as batch_op:
        batch_op.add_column(sa.Column("sales_order_line_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_reservation_lines_sales_order_line_id"),
            ["sales_order_line_id"],
            unique=False,
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_reservation_lines_sales_order_line_id_sales_order_lines"),
            "sales_order_lines",
            ["sales_order_line_id"],
            ["id"],
            ondelete="RESTRICT",
        )

    with op.batch_alter_table("reservations", schema=None, table_kwargs=NO_ID_REUSE) as batch_op:
        batch_op.add_column(sa.Column("sales_order_id", sa.Integer(), nullable=True))
        batch_op.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch_op.create_unique_constraint(
            batch_op.f("uq_reservations_sales_order_id"), ["sales_order_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_reservations_sales_order_id_sales_orders"),
            "sales_orders",
            ["sales_order_id"],
            ["id"],
            ondelete="RESTRICT",
        )

    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("on_order", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "average_cost",
                sa.Numeric(precision=16, scale=4),
                server_default="0",
                nullable=False,
            )
        )

    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unit_cost", sa.Numeric(precision=16, scale=4), nullable=True)
        )
        batch_op.add_column(
            sa.Column("average_cost", sa.Numeric(precision=16, scale=4), nullable=True)
        )


def downgrade() -> None:
    # A sales order's allocations have no expiry, which the older schema cannot
    # hold: they go with the orders.
    op.execute("DELETE FROM reservation_lines WHERE sales_order_line_id IS NOT NULL")
    op.execute("DELETE FROM reservations WHERE sales_order_id IS NOT NULL")
    # Their levels' latest hold goes back to what the remaining holds say, so
    # decrements there take the one-statement path again.
    op.execute(
        "UPDATE stock_levels SET holds_until = ("
        " SELECT max(rl.held_until) FROM reservation_lines rl"
        " WHERE rl.product_id = stock_levels.product_id"
        " AND rl.warehouse_id = stock_levels.warehouse_id)"
        " WHERE holds_until IS NOT NULL"
    )
    with op.batch_alter_table("stock_movements", schema=None, table_kwargs=NO_ID_REUSE) as batch_op:
        batch_op.drop_column("average_cost")
        batch_op.drop_column("unit_cost")

    with op.batch_alter_table("stock_levels", schema=None, table_kwargs=NO_ID_REUSE) as batch_op:
        batch_op.drop_column("average_cost")
        batch_op.drop_column("on_order")

    with op.batch_alter_table("reservations", schema=None, table_kwargs=NO_ID_REUSE) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_reservations_sales_order_id_sales_orders"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_reservations_sales_order_id"), type_="unique")
        batch_op.alter_column(
            "expires_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.drop_column("sales_order_id")

    with op.batch_alter_table(
        "reservation_lines", schema=None, table_kwargs=NO_ID_REUSE
    ) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_reservation_lines_sales_order_line_id_sales_order_lines"),
            type_="foreignkey",
        )
        batch_op.drop_index(batch_op.f("ix_reservation_lines_sales_order_line_id"))
        batch_op.drop_column("sales_order_line_id")

    with op.batch_alter_table("sales_order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_order_lines_warehouse_id"))
        batch_op.drop_index(batch_op.f("ix_sales_order_lines_product_id"))
        batch_op.drop_index(batch_op.f("ix_sales_order_lines_order_id"))

    op.drop_table("sales_order_lines")
    with op.batch_alter_table("purchase_order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purchase_order_lines_product_id"))
        batch_op.drop_index(batch_op.f("ix_purchase_order_lines_order_id"))

    op.drop_table("purchase_order_lines")
    with op.batch_alter_table("sales_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_orders_status"))
        batch_op.drop_index(batch_op.f("ix_sales_orders_customer_reference"))

    op.drop_table("sales_orders")
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purchase_orders_warehouse_id"))
        batch_op.drop_index(batch_op.f("ix_purchase_orders_supplier_id"))
        batch_op.drop_index(batch_op.f("ix_purchase_orders_status"))

    op.drop_table("purchase_orders")
    op.drop_table("order_numbers")

"""a managed catalog: prices from an effective date, price-book versions, the version of each order

Revision ID: 7c1e0a9d5b21
Revises: 16bdd0358af3
Create Date: 2026-12-04

Rules §10: `price_changes` holds the prices operators set from an effective date; `price_book_versions`
numbers every change of the catalog; each order records the version it was priced from (0 for orders
placed before this revision). A catalog loaded before this revision counts as version 1.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "7c1e0a9d5b21"
down_revision: str | Sequence[str] | None = "16bdd0358af3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "price_changes",
        sa.Column("product_code", sa.String(length=40), nullable=False),
        sa.Column("plan", sa.String(length=20), nullable=False),
        sa.Column("term", sa.String(length=20), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("list_price", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("renewal_price", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("price_book_version", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("product_code", "plan", "term", "effective_date"),
    )
    versions = op.create_table(
        "price_book_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("change", sa.String(length=400), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("price_book_version", sa.Integer(), server_default="0", nullable=False))

    products = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM products")).scalar_one()
    if products:
        op.bulk_insert(
            versions,
            [{"version": 1, "change": "catalog as loaded before versions", "create_time": datetime.now(UTC)}],
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("price_book_version")
    op.drop_table("price_book_versions")
    op.drop_table("price_changes")

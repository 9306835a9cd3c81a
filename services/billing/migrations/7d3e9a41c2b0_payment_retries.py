"""payment retries (dunning)

Revision ID: 7d3e9a41c2b0
Revises: 56b5b17814ab
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d3e9a41c2b0"
down_revision: str | Sequence[str] | None = "56b5b17814ab"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_retries",
        sa.Column("invoice_id", sa.String(length=80), nullable=False),
        sa.Column("account_id", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_decline_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_reason", sa.String(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("invoice_id"),
    )
    with op.batch_alter_table("payment_retries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_retries_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_payment_retries_status_next", ["status", "next_attempt_time"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("payment_retries", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_retries_status_next")
        batch_op.drop_index(batch_op.f("ix_payment_retries_account_id"))
    op.drop_table("payment_retries")

"""outbox delivery order

Revision ID: 51d78dadc85f
Revises: 2aebcd8a2552
Create Date: 2026-11-23 01:53:14.850797
"""

from collections.abc import Sequence

from shared.migrations import pipe

revision: str = "51d78dadc85f"
down_revision: str | Sequence[str] | None = "2aebcd8a2552"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.add_outbox_delivery_order()


def downgrade() -> None:
    pipe.drop_outbox_delivery_order()

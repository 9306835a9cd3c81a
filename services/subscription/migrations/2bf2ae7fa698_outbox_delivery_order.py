"""outbox delivery order

Revision ID: 2bf2ae7fa698
Revises: 51c0146f5b7f
Create Date: 2026-11-23 01:53:13.658048
"""

from collections.abc import Sequence

from shared.migrations import pipe

revision: str = "2bf2ae7fa698"
down_revision: str | Sequence[str] | None = "51c0146f5b7f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.add_outbox_delivery_order()


def downgrade() -> None:
    pipe.drop_outbox_delivery_order()

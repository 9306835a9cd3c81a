"""outbox delivery order

Revision ID: f926491bad9b
Revises: 03c539737b87
Create Date: 2026-11-23 01:53:17.056555
"""

from collections.abc import Sequence

from shared.migrations import pipe

revision: str = "f926491bad9b"
down_revision: str | Sequence[str] | None = "03c539737b87"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.add_outbox_delivery_order()


def downgrade() -> None:
    pipe.drop_outbox_delivery_order()

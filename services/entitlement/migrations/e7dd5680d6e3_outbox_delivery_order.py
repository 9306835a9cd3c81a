"""outbox delivery order

Revision ID: e7dd5680d6e3
Revises: 503a7f002e27
Create Date: 2026-11-23 01:53:15.938435
"""

from collections.abc import Sequence

from shared.migrations import pipe

revision: str = "e7dd5680d6e3"
down_revision: str | Sequence[str] | None = "503a7f002e27"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.add_outbox_delivery_order()


def downgrade() -> None:
    pipe.drop_outbox_delivery_order()

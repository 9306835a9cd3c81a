"""outbox batch rows

Revision ID: b95ec6796f81
Revises: f926491bad9b
Create Date: 2026-12-03 08:45:44.706611
"""

from collections.abc import Sequence

from shared.migrations import pipe

revision: str = "b95ec6796f81"
down_revision: str | Sequence[str] | None = "f926491bad9b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.add_outbox_batch()


def downgrade() -> None:
    pipe.drop_outbox_batch()

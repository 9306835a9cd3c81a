"""outbox batch rows

Revision ID: fafa5a830638
Revises: 51d78dadc85f
Create Date: 2026-12-03 08:45:43.274739
"""

from collections.abc import Sequence

from shared.migrations import pipe

revision: str = "fafa5a830638"
down_revision: str | Sequence[str] | None = "51d78dadc85f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.add_outbox_batch()


def downgrade() -> None:
    pipe.drop_outbox_batch()

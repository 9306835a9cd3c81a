"""outbox batch rows

Revision ID: 4b996641d400
Revises: e7dd5680d6e3
Create Date: 2026-12-03 08:45:43.978438
"""

from collections.abc import Sequence

from shared.migrations import pipe

revision: str = "4b996641d400"
down_revision: str | Sequence[str] | None = "e7dd5680d6e3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.add_outbox_batch()


def downgrade() -> None:
    pipe.drop_outbox_batch()

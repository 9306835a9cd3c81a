"""the test clock's time, stored

Revision ID: c10c4a11e003
Revises: 4b996641d400
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from shared.migrations import pipe

revision: str = "c10c4a11e003"
down_revision: str | Sequence[str] | None = "4b996641d400"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.create_test_clock()


def downgrade() -> None:
    pipe.drop_test_clock()

"""the test clock's time, stored

Revision ID: c10c4a11e004
Revises: 20c81ca69dbd
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from shared.migrations import pipe

revision: str = "c10c4a11e004"
down_revision: str | Sequence[str] | None = "20c81ca69dbd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.create_test_clock()


def downgrade() -> None:
    pipe.drop_test_clock()

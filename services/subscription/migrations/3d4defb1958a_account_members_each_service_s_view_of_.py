"""account_members: each service's view of the account teams, for permission checks

Revision ID: 3d4defb1958a
Revises: be82ba077e32
Create Date: 2026-12-04 16:10:34.035553
"""

from collections.abc import Sequence

from shared.migrations import pipe

revision: str = "3d4defb1958a"
down_revision: str | Sequence[str] | None = "be82ba077e32"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.create_account_members()


def downgrade() -> None:
    pipe.drop_account_members()

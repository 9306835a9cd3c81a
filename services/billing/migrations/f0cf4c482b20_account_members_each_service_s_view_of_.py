"""account_members: each service's view of the account teams, for permission checks

Revision ID: f0cf4c482b20
Revises: fafa5a830638
Create Date: 2026-12-04 16:10:35.662216
"""

from collections.abc import Sequence

from shared.migrations import pipe

revision: str = "f0cf4c482b20"
down_revision: str | Sequence[str] | None = "fafa5a830638"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.create_account_members()


def downgrade() -> None:
    pipe.drop_account_members()

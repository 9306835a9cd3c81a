"""account_members: each service's view of the account teams, for permission checks

Revision ID: 20c81ca69dbd
Revises: b95ec6796f81
Create Date: 2026-12-04 16:10:37.113154
"""

from collections.abc import Sequence

from shared.migrations import pipe

revision: str = "20c81ca69dbd"
down_revision: str | Sequence[str] | None = "b95ec6796f81"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.create_account_members()


def downgrade() -> None:
    pipe.drop_account_members()

"""account members from billing profiles: the buyer each existing profile names

Revision ID: 56b5b17814ab
Revises: f0cf4c482b20
Create Date: 2026-12-04 18:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "56b5b17814ab"
down_revision: str | Sequence[str] | None = "f0cf4c482b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Accounts billed before teams were kept here: the buyer their profile names is their buyer and
    # primary admin, until entitlement's role events say otherwise. Accounts that already have rows are
    # left alone.
    op.execute(
        "INSERT INTO account_members (account_id, email, role) "
        "SELECT p.account_id, lower(trim(p.buyer_email)), r.role FROM billing_profiles p "
        "CROSS JOIN (SELECT 'BUYER' AS role UNION ALL SELECT 'PRIMARY_ADMIN' AS role) r "
        "WHERE trim(p.buyer_email) <> '' "
        "AND NOT EXISTS (SELECT 1 FROM account_members m WHERE m.account_id = p.account_id)"
    )


def downgrade() -> None:
    pass  # the rows are a view of the teams; keeping them is harmless

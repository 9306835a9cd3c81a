"""account credit ledger and the parts of credit notes

Revision ID: 388a62bb58c3
Revises: c10c4a11e002
Create Date: 2026-12-04 19:48:35.351870

Credit notes on open invoices and account credit (rules §5): each credit note records its parts
(reduced an open invoice, refunded, kept as account credit) and what it was computed from; invoices
record the account credit applied and the credit notes that reduced them while open; the ledger of
account credit starts with the credit notes already kept as cash balance.
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "388a62bb58c3"
down_revision: str | Sequence[str] | None = "c10c4a11e002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_credit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=80), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.String(length=40), nullable=False),
        sa.Column("credit_note_id", sa.String(length=80), nullable=False),
        sa.Column("credit_note_number", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=80), nullable=False),
        sa.Column("balance_before", sa.String(length=40), nullable=False),
        sa.Column("balance_after", sa.String(length=40), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "credit_note_id", "invoice_id", name="uq_account_credit_entry"),
    )
    with op.batch_alter_table("account_credit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_account_credit_account", ["account_id", "currency"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_account_credit_entries_invoice_id"), ["invoice_id"], unique=False
        )

    with op.batch_alter_table("credit_notes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("amount_due_reduced", sa.String(length=40), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("refunded_amount", sa.String(length=40), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("account_credit_amount", sa.String(length=40), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("creditable_before", sa.String(length=40), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("invoice_amount_due_after", sa.String(length=40), nullable=False, server_default="0")
        )

    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("credit_applied", sa.String(length=40), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("amount_due_credited", sa.String(length=40), nullable=False, server_default="0")
        )
    _backfill()


def _backfill() -> None:
    """Credit notes issued before: all refunded or all kept as cash balance; the latter open the ledger."""
    bind = op.get_bind()
    notes = sa.table(
        "credit_notes",
        sa.column("credit_note_id", sa.String()),
        sa.column("credit_note_number", sa.String()),
        sa.column("account_id", sa.String()),
        sa.column("currency", sa.String()),
        sa.column("amount", sa.String()),
        sa.column("settlement", sa.String()),
        sa.column("issue_time", sa.DateTime(timezone=True)),
        sa.column("refunded_amount", sa.String()),
        sa.column("account_credit_amount", sa.String()),
    )
    entries = sa.table(
        "account_credit_entries",
        sa.column("account_id", sa.String()),
        sa.column("currency", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("amount", sa.String()),
        sa.column("credit_note_id", sa.String()),
        sa.column("credit_note_number", sa.String()),
        sa.column("invoice_id", sa.String()),
        sa.column("balance_before", sa.String()),
        sa.column("balance_after", sa.String()),
        sa.column("create_time", sa.DateTime(timezone=True)),
    )
    bind.execute(notes.update().where(notes.c.settlement == "refund").values(refunded_amount=notes.c.amount))
    bind.execute(
        notes.update()
        .where(notes.c.settlement == "cash_balance")
        .values(account_credit_amount=notes.c.amount)
    )
    rows = bind.execute(
        sa.select(notes)
        .where(notes.c.settlement == "cash_balance")
        .order_by(notes.c.issue_time, notes.c.credit_note_number)
    ).all()
    balance: dict[tuple[str, str], Decimal] = {}
    for r in rows:
        key = (r.account_id, r.currency)
        before = balance.get(key, Decimal(0))
        after = before + Decimal(r.amount)
        balance[key] = after
        bind.execute(
            entries.insert().values(
                account_id=r.account_id,
                currency=r.currency,
                kind="deposit",
                amount=str(Decimal(r.amount)),
                credit_note_id=r.credit_note_id,
                credit_note_number=r.credit_note_number,
                invoice_id="",
                balance_before=str(before),
                balance_after=str(after),
                create_time=r.issue_time,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("amount_due_credited")
        batch_op.drop_column("credit_applied")

    with op.batch_alter_table("credit_notes", schema=None) as batch_op:
        batch_op.drop_column("invoice_amount_due_after")
        batch_op.drop_column("creditable_before")
        batch_op.drop_column("account_credit_amount")
        batch_op.drop_column("refunded_amount")
        batch_op.drop_column("amount_due_reduced")

    with op.batch_alter_table("account_credit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_credit_entries_invoice_id"))
        batch_op.drop_index("ix_account_credit_account")

    op.drop_table("account_credit_entries")

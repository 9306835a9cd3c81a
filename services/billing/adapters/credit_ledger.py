"""The account-credit ledger table and its repository (rules §5 Credit notes and balance).

One row per movement of an account's credit in one currency: a credit note kept as account credit
(`deposit`, +), a part of it applied to an invoice (`applied`, −), and a part given back when that
invoice was voided (`released`, +). The balance is the sum of the rows. A unique key per (kind, credit
note, invoice) means a retried or crashed request never deposits or applies the same part twice, and
movements of one account and currency queue behind `lock` (PostgreSQL advisory lock; SQLite's write
lock already serializes), so two invoices issued at once never both use the same credit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, select

from services.billing.adapters.tables import BillingModel, _money, _time
from shared.db import UnitOfWork

DEPOSIT = "deposit"
APPLIED = "applied"
RELEASED = "released"


class CreditEntryRow(BillingModel, table=True):
    __tablename__ = "account_credit_entries"
    __table_args__ = (
        UniqueConstraint("kind", "credit_note_id", "invoice_id", name="uq_account_credit_entry"),
        Index("ix_account_credit_account", "account_id", "currency"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(max_length=80)
    currency: str = Field(max_length=3)
    kind: str = Field(max_length=16)
    amount: Decimal = _money()  # + deposit or released, − applied
    credit_note_id: str = Field(max_length=80)
    credit_note_number: str = Field(default="", max_length=40)
    invoice_id: str = Field(default="", index=True, max_length=80)  # applied to / released by
    balance_before: Decimal = _money()
    balance_after: Decimal = _money()
    create_time: datetime = _time()


class AccountCredit:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session

    def lock(self, account_id: str, currency: str) -> None:
        """Serialize the credit movements of one account and currency until this unit of work ends."""
        self.uow.lock_key(f"account-credit:{account_id}:{currency}")

    def entries(self, account_id: str, currency: str) -> Sequence[CreditEntryRow]:
        """The account's movements in `currency`, oldest first."""
        stmt = (
            select(CreditEntryRow)
            .where(CreditEntryRow.account_id == account_id, CreditEntryRow.currency == currency)
            .order_by(CreditEntryRow.id)  # type: ignore[arg-type]
        )
        return self.session.scalars(stmt).all()

    def of_account(self, account_id: str) -> Sequence[CreditEntryRow]:
        stmt = (
            select(CreditEntryRow).where(CreditEntryRow.account_id == account_id).order_by(CreditEntryRow.id)  # type: ignore[arg-type]
        )
        return self.session.scalars(stmt).all()

    def of_invoice(self, invoice_id: str) -> Sequence[CreditEntryRow]:
        """The credit applied to an invoice and given back by it, oldest first."""
        stmt = (
            select(CreditEntryRow)
            .where(CreditEntryRow.invoice_id == invoice_id, CreditEntryRow.kind != DEPOSIT)
            .order_by(CreditEntryRow.id)  # type: ignore[arg-type]
        )
        return self.session.scalars(stmt).all()

    def add(self, rows: list[CreditEntryRow]) -> None:
        for r in rows:
            self.session.add(r)
            self.session.flush()  # in order: the ids keep the ledger's order

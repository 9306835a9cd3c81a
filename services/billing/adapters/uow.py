"""Billing's unit of work: the shared transaction plus billing's typed repositories.

`db.unit_of_work()`, `db.reading()` and `db.run_idempotent(...)` hand handlers this class (wired in
`app.py`), so a handler speaks only to `uow.invoices`, `uow.payers`, … and never to a session.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session

from services.billing.adapters.credit_ledger import AccountCredit
from services.billing.adapters.repository import (
    Attachments,
    CreditNotes,
    Installments,
    Invoices,
    Members,
    Payers,
    PaymentMethods,
    Payments,
    PendingDetails,
    Profiles,
)
from services.billing.adapters.retries import PaymentRetries
from shared.db import Database, UnitOfWork


class BillingUnitOfWork(UnitOfWork):
    def __init__(self, db: Database, session: Session) -> None:
        super().__init__(db, session)
        self.profiles = Profiles(self)
        self.payment_methods = PaymentMethods(self)
        self.payers = Payers(self)
        self.invoices = Invoices(self)
        self.payments = Payments(self)
        self.installments = Installments(self)
        self.credit_notes = CreditNotes(self)
        self.attachments = Attachments(self)
        self.pending_details = PendingDetails(self)
        self.members = Members(self)
        self.retries = PaymentRetries(self)
        self.account_credit = AccountCredit(self)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo only what is done inside when it raises (the rest of the transaction goes on)."""
        with self.session.begin_nested():
            yield

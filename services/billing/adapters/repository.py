"""Billing's repositories: one class per kind of record, each on the unit of work's session.

Handlers reach them as `uow.profiles`, `uow.invoices`, … (see `uow.py`); no business rules here, only
how records are found, locked, listed and stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import ColumnElement, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.billing.adapters import directory
from services.billing.adapters.tables import (
    AttachmentRow,
    CounterRow,
    CreditNoteRow,
    InstallmentRow,
    InvoiceLineRow,
    InvoiceRow,
    PayerRow,
    PaymentMethodRow,
    PaymentRow,
    PendingDetailsRow,
    ProfileRow,
)
from services.billing.domain.model import InstallmentStatus, InvoiceStatus, MethodType
from services.billing.domain.numbering import format_number
from shared.db import UnitOfWork
from shared.errors import NotFound


class _Repository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session

    def add(self, row) -> None:
        self.session.add(row)
        self.session.flush()


class Profiles(_Repository):
    def get(self, account_id: str) -> ProfileRow | None:
        return self.session.get(ProfileRow, account_id) if account_id else None

    def require(self, account_id: str) -> ProfileRow:
        row = self.get(account_id)
        if row is None:
            raise NotFound(f"account {account_id} has no billing profile", reason="BILLING_PROFILE_NOT_FOUND")
        return row

    def save(self, row: ProfileRow) -> None:
        self.add(row)


class PaymentMethods(_Repository):
    def get(self, payment_method_id: str) -> PaymentMethodRow | None:
        return self.session.get(PaymentMethodRow, payment_method_id) if payment_method_id else None

    def require(self, payment_method_id: str) -> PaymentMethodRow:
        row = self.get(payment_method_id)
        if row is None:
            raise NotFound(f"no payment method {payment_method_id!r}", reason="PAYMENT_METHOD_NOT_FOUND")
        return row

    def of_account(self, account_id: str) -> Sequence[PaymentMethodRow]:
        """The account's methods that were not removed, oldest first."""
        stmt = (
            select(PaymentMethodRow)
            .where(PaymentMethodRow.account_id == account_id, PaymentMethodRow.removed.is_(False))
            .order_by(PaymentMethodRow.create_time, PaymentMethodRow.payment_method_id)
        )
        return self.session.scalars(stmt).all()

    def save(self, row: PaymentMethodRow) -> None:
        self.add(row)


class Payers(_Repository):
    def lock_account(self, account_id: str) -> None:
        """Serialize payer changes of one account (PostgreSQL; SQLite's write lock already does)."""
        if self.uow.db.is_postgres:
            self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"payers:{account_id}"}
            )

    def of_account(self, account_id: str) -> Sequence[PayerRow]:
        stmt = (
            select(PayerRow)
            .where(PayerRow.account_id == account_id)
            .order_by(PayerRow.create_time, PayerRow.email)
        )
        return self.session.scalars(stmt).all()

    def get(self, account_id: str, email: str) -> PayerRow | None:
        return self.session.get(PayerRow, (account_id, email))

    def remove(self, row: PayerRow) -> None:
        self.session.delete(row)
        self.session.flush()


def is_invoice_number(key: str) -> bool:
    """An invoice's printed number (`INV-2024-000001`, on the PDF and in the e-mail) rather than its id."""
    return key.startswith("INV-")


def _invoice_key(key: str) -> ColumnElement[bool]:
    """Every invoice RPC names its invoice by id or by the number printed on it."""
    return (InvoiceRow.invoice_number if is_invoice_number(key) else InvoiceRow.invoice_id) == key


class Invoices(_Repository):
    def get(self, invoice_id: str) -> InvoiceRow:
        """The invoice of this id or number."""
        row = None
        if invoice_id:
            row = (
                self.session.scalars(select(InvoiceRow).where(_invoice_key(invoice_id))).first()
                if is_invoice_number(invoice_id)
                else self.session.get(InvoiceRow, invoice_id)
            )
        if row is None:
            raise NotFound(f"no invoice {invoice_id!r}", reason="INVOICE_NOT_FOUND")
        return row

    def lock(self, invoice_id: str) -> InvoiceRow:
        """The invoice of this id or number, locked for this transaction (PostgreSQL waits for other
        writers; SQLite's write lock already serializes)."""
        stmt = self.uow.for_update(select(InvoiceRow).where(_invoice_key(invoice_id)), skip_locked=False)
        row = (
            self.session.scalars(stmt.execution_options(populate_existing=True)).first()
            if invoice_id
            else None
        )
        if row is None:
            raise NotFound(f"no invoice {invoice_id!r}", reason="INVOICE_NOT_FOUND")
        return row

    def by_request(self, request_id: str) -> InvoiceRow | None:
        return self.session.scalars(select(InvoiceRow).where(InvoiceRow.request_id == request_id)).first()

    def lines(self, invoice_id: str) -> Sequence[InvoiceLineRow]:
        stmt = (
            select(InvoiceLineRow)
            .where(InvoiceLineRow.invoice_id == invoice_id)
            .order_by(InvoiceLineRow.position)
        )
        return self.session.scalars(stmt).all()

    def add_issued(self, row: InvoiceRow, lines: list[InvoiceLineRow]) -> None:
        """Store a new invoice with its lines."""
        for ln in lines:
            self.session.add(ln)
        self.session.add(row)
        self.session.flush()

    def save(self, row: InvoiceRow) -> None:
        self.add(row)

    def invoice_paid_subscriptions(self, account_id: str) -> set[str]:
        """Subscriptions of the account that have (non-void) invoices paid by invoice."""
        stmt = select(InvoiceRow.subscription_id).where(
            InvoiceRow.account_id == account_id,
            InvoiceRow.payment_method_type == MethodType.INVOICE.value,
            InvoiceRow.status != InvoiceStatus.VOID.value,
        )
        return {s or "(none)" for s in self.session.scalars(stmt.distinct()).all()}

    def page(
        self, account_id: str, status: str, subscription_id: str, offset: int, size: int
    ) -> tuple[Sequence[InvoiceRow], bool]:
        """Newest first; `account_id`/`status`/`subscription_id` filter when given. True when more follow."""
        stmt = select(InvoiceRow)
        if account_id:
            stmt = stmt.where(InvoiceRow.account_id == account_id)
        if status:
            stmt = stmt.where(InvoiceRow.status == status)
        if subscription_id:
            stmt = stmt.where(InvoiceRow.subscription_id == subscription_id)
        stmt = stmt.order_by(InvoiceRow.issue_time.desc(), InvoiceRow.invoice_number.desc())
        rows = self.session.scalars(stmt.offset(offset).limit(size + 1)).all()
        return rows[:size], len(rows) > size

    def of_account(self, account_id: str) -> Sequence[InvoiceRow]:
        return self.session.scalars(select(InvoiceRow).where(InvoiceRow.account_id == account_id)).all()

    def latest_currency(self, account_id: str) -> str | None:
        stmt = (
            select(InvoiceRow.currency)
            .where(InvoiceRow.account_id == account_id)
            .order_by(InvoiceRow.issue_time.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def claim_open_due(self, horizon: date, seen: set[str], limit: int) -> Sequence[InvoiceRow]:
        """Open invoices not yet marked overdue, due by `horizon`, not in `seen`; claimed with SKIP
        LOCKED (PostgreSQL) so replicas share them."""
        stmt = (
            select(InvoiceRow)
            .where(
                InvoiceRow.status == InvoiceStatus.OPEN.value,
                InvoiceRow.overdue_time.is_(None),
                InvoiceRow.due_date <= horizon,
                InvoiceRow.invoice_id.not_in(seen) if seen else True,
            )
            .order_by(InvoiceRow.due_date, InvoiceRow.invoice_id)
            .limit(limit)
        )
        return self.session.scalars(self.uow.for_update(stmt)).all()

    def coming_due_dates(self, since: date, limit: int) -> list[tuple[date, str]]:
        """The (due date, zone) pairs of open invoices not yet marked overdue, due on or after `since`,
        earliest first."""
        stmt = (
            select(InvoiceRow.due_date, InvoiceRow.time_zone)
            .where(
                InvoiceRow.status == InvoiceStatus.OPEN.value,
                InvoiceRow.overdue_time.is_(None),
                InvoiceRow.due_date >= since,
            )
            .distinct()
            .order_by(InvoiceRow.due_date)
            .limit(limit)
        )
        return [(d, z) for d, z in self.session.execute(stmt).all()]

    def next_number(self, series: str, year: int) -> str:
        """The next number of a series in a year. The counter row is updated in this transaction: it
        stays locked until commit (so concurrent issuers queue) and a rollback gives the number back."""
        s = self.session
        table = CounterRow.__table__
        ins = pg_insert(table) if self.uow.db.is_postgres else sqlite_insert(table)
        s.execute(ins.values(series=series, year=year, last=0).on_conflict_do_nothing())
        result = s.execute(
            update(table)
            .where(table.c.series == series, table.c.year == year)
            .values(last=table.c.last + 1)
            .returning(table.c.last)
        )
        return format_number(series, year, int(result.scalar_one()))


class Payments(_Repository):
    def of_invoice(self, invoice_id: str) -> Sequence[PaymentRow]:
        """Every payment attempt of an invoice, oldest first."""
        stmt = (
            select(PaymentRow)
            .where(PaymentRow.invoice_id == invoice_id)
            .order_by(PaymentRow.create_time, PaymentRow.payment_id)
        )
        return self.session.scalars(stmt).all()

    def last(self, invoice_id: str) -> PaymentRow | None:
        stmt = (
            select(PaymentRow)
            .where(PaymentRow.invoice_id == invoice_id)
            .order_by(PaymentRow.create_time.desc(), PaymentRow.payment_id.desc())
        )
        return self.session.scalars(stmt).first()

    def succeeded_charges(self, invoice_id: str) -> Sequence[PaymentRow]:
        stmt = select(PaymentRow).where(
            PaymentRow.invoice_id == invoice_id, PaymentRow.status == "succeeded", PaymentRow.charge_id != ""
        )
        return self.session.scalars(stmt).all()


class Installments(_Repository):
    def of_subscription(self, subscription_id: str) -> Sequence[InstallmentRow]:
        stmt = (
            select(InstallmentRow)
            .where(InstallmentRow.subscription_id == subscription_id)
            .order_by(InstallmentRow.term_start_date, InstallmentRow.sequence)
        )
        return self.session.scalars(stmt).all()

    def of_invoice(self, invoice_id: str) -> InstallmentRow | None:
        return self.session.scalars(
            select(InstallmentRow).where(InstallmentRow.invoice_id == invoice_id)
        ).first()

    def add_all(self, rows: list[InstallmentRow]) -> None:
        for r in rows:
            self.session.add(r)
        self.session.flush()

    def save(self, row: InstallmentRow) -> None:
        self.add(row)

    def lock_scheduled(self, subscription_id: str) -> Sequence[InstallmentRow]:
        """The subscription's scheduled installments, locked; waits for a sweep that is invoicing one
        of them (once it commits, that one is no longer scheduled)."""
        stmt = select(InstallmentRow).where(
            InstallmentRow.subscription_id == subscription_id,
            InstallmentRow.status == InstallmentStatus.SCHEDULED.value,
        )
        return self.session.scalars(self.uow.for_update(stmt, skip_locked=False)).all()

    def coming_due_dates(self, since: date, limit: int) -> list[tuple[date, str]]:
        """The (due date, zone) pairs of scheduled installments due on or after `since`, earliest first."""
        stmt = (
            select(InstallmentRow.due_date, InstallmentRow.time_zone)
            .where(
                InstallmentRow.status == InstallmentStatus.SCHEDULED.value, InstallmentRow.due_date >= since
            )
            .distinct()
            .order_by(InstallmentRow.due_date)
            .limit(limit)
        )
        return [(d, z) for d, z in self.session.execute(stmt).all()]

    def claim_next_due(self, horizon: date, skip: set[str]) -> InstallmentRow | None:
        """The earliest scheduled installment due by `horizon` and not in `skip`, claimed with SKIP LOCKED
        (PostgreSQL) so replicas share the work."""
        stmt = (
            select(InstallmentRow)
            .where(
                InstallmentRow.status == InstallmentStatus.SCHEDULED.value,
                InstallmentRow.due_date <= horizon,
                InstallmentRow.installment_id.not_in(skip) if skip else True,
            )
            .order_by(InstallmentRow.due_date, InstallmentRow.installment_id)
            .limit(1)
        )
        return self.session.scalars(self.uow.for_update(stmt)).first()


class CreditNotes(_Repository):
    def page(self, account_id: str, offset: int, size: int) -> tuple[Sequence[CreditNoteRow], bool]:
        stmt = (
            select(CreditNoteRow)
            .where(CreditNoteRow.account_id == account_id)
            .order_by(CreditNoteRow.issue_time.desc(), CreditNoteRow.credit_note_number.desc())
        )
        rows = self.session.scalars(stmt.offset(offset).limit(size + 1)).all()
        return rows[:size], len(rows) > size

    def of_account(self, account_id: str) -> Sequence[CreditNoteRow]:
        return self.session.scalars(select(CreditNoteRow).where(CreditNoteRow.account_id == account_id)).all()

    def of_invoice(self, invoice_id: str) -> Sequence[CreditNoteRow]:
        return self.session.scalars(select(CreditNoteRow).where(CreditNoteRow.invoice_id == invoice_id)).all()


class Attachments(_Repository):
    def of_invoice(self, invoice_id: str) -> Sequence[AttachmentRow]:
        stmt = select(AttachmentRow).where(AttachmentRow.invoice_id == invoice_id)
        return self.session.scalars(
            stmt.order_by(AttachmentRow.create_time, AttachmentRow.attachment_id)
        ).all()

    def pending(self, subscription_id: str) -> Sequence[AttachmentRow]:
        """Documents the buyer gave for a subscription's next invoice."""
        stmt = select(AttachmentRow).where(
            AttachmentRow.subscription_id == subscription_id, AttachmentRow.invoice_id == ""
        )
        return self.session.scalars(
            stmt.order_by(AttachmentRow.create_time, AttachmentRow.attachment_id)
        ).all()

    def remove(self, row: AttachmentRow) -> None:
        self.session.delete(row)

    def put(self, row: AttachmentRow) -> None:
        self.session.add(row)


class PendingDetails(_Repository):
    """PO number and notes for a subscription's next invoice."""

    def get(self, subscription_id: str) -> PendingDetailsRow | None:
        return self.session.get(PendingDetailsRow, subscription_id) if subscription_id else None

    def save(self, row: PendingDetailsRow) -> None:
        self.add(row)

    def remove(self, row: PendingDetailsRow) -> None:
        self.session.delete(row)


class Members(_Repository):
    """Who holds which role on which account (the projection of entitlement's teams and billing's
    payers, see `directory`)."""

    def roles(self, account_id: str, email: str) -> frozenset[str]:
        return directory.roles(self.session, account_id, email)

    def known(self, account_id: str) -> bool:
        return directory.known(self.session, account_id)

    def buyer(self, account_id: str) -> str:
        return directory.buyer(self.session, account_id)

    def grant(self, account_id: str, email: str, role: str) -> None:
        directory.members.grant(self.session, account_id, email, role)

    def apply_role_changed(self, change) -> None:
        directory.members.apply_role_changed(self.session, change)

    def account_of_invoice(self, invoice_id: str) -> str | None:
        stmt = select(InvoiceRow.account_id).where(_invoice_key(invoice_id))
        return self.session.execute(stmt).scalar_one_or_none()

    def account_of_subscription(self, subscription_id: str) -> str | None:
        stmt = select(InvoiceRow.account_id).where(InvoiceRow.subscription_id == subscription_id).limit(1)
        found = self.session.execute(stmt).scalar_one_or_none()
        if found is None:
            stmt = select(InstallmentRow.account_id).where(InstallmentRow.subscription_id == subscription_id)
            found = self.session.execute(stmt.limit(1)).scalar_one_or_none()
        return found

"""Queries over the billing tables, shared by the handlers. No business rules here."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

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
from services.billing.domain.model import InvoiceStatus, MethodType
from services.billing.domain.numbering import format_number
from shared.db import UnitOfWork
from shared.errors import InvalidInput, NotFound

MAX_PAGE = 500
DEFAULT_PAGE = 50


def profile(session: Session, account_id: str) -> ProfileRow | None:
    return session.get(ProfileRow, account_id)


def require_profile(session: Session, account_id: str) -> ProfileRow:
    row = profile(session, account_id)
    if row is None:
        raise NotFound(f"account {account_id} has no billing profile", reason="BILLING_PROFILE_NOT_FOUND")
    return row


def payment_method(session: Session, payment_method_id: str) -> PaymentMethodRow:
    row = session.get(PaymentMethodRow, payment_method_id) if payment_method_id else None
    if row is None:
        raise NotFound(f"no payment method {payment_method_id!r}", reason="PAYMENT_METHOD_NOT_FOUND")
    return row


def payment_methods(session: Session, account_id: str) -> Sequence[PaymentMethodRow]:
    stmt = (
        select(PaymentMethodRow)
        .where(PaymentMethodRow.account_id == account_id, PaymentMethodRow.removed.is_(False))
        .order_by(PaymentMethodRow.create_time, PaymentMethodRow.payment_method_id)
    )
    return session.scalars(stmt).all()


def payers(session: Session, account_id: str) -> Sequence[PayerRow]:
    stmt = (
        select(PayerRow)
        .where(PayerRow.account_id == account_id)
        .order_by(PayerRow.create_time, PayerRow.email)
    )
    return session.scalars(stmt).all()


def invoice(session: Session, invoice_id: str) -> InvoiceRow:
    row = session.get(InvoiceRow, invoice_id) if invoice_id else None
    if row is None:
        raise NotFound(f"no invoice {invoice_id!r}", reason="INVOICE_NOT_FOUND")
    return row


def lock_invoice(uow: UnitOfWork, invoice_id: str) -> InvoiceRow:
    """The invoice, locked for this transaction (PostgreSQL waits for other writers; SQLite's write
    lock already serializes)."""
    stmt = uow.for_update(select(InvoiceRow).where(InvoiceRow.invoice_id == invoice_id), skip_locked=False)
    row = uow.session.scalars(stmt.execution_options(populate_existing=True)).first() if invoice_id else None
    if row is None:
        raise NotFound(f"no invoice {invoice_id!r}", reason="INVOICE_NOT_FOUND")
    return row


def invoice_by_request(session: Session, request_id: str) -> InvoiceRow | None:
    return session.scalars(select(InvoiceRow).where(InvoiceRow.request_id == request_id)).first()


def list_invoices_of_subscription(session: Session, subscription_id: str) -> InvoiceRow | None:
    """The latest invoice of a subscription (it names the subscription's account)."""
    stmt = (
        select(InvoiceRow)
        .where(InvoiceRow.subscription_id == subscription_id)
        .order_by(InvoiceRow.issue_time.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def lines(session: Session, invoice_id: str) -> Sequence[InvoiceLineRow]:
    stmt = (
        select(InvoiceLineRow)
        .where(InvoiceLineRow.invoice_id == invoice_id)
        .order_by(InvoiceLineRow.position)
    )
    return session.scalars(stmt).all()


def attachments(
    session: Session, *, invoice_id: str = "", subscription_id: str = ""
) -> Sequence[AttachmentRow]:
    stmt = select(AttachmentRow)
    if invoice_id:
        stmt = stmt.where(AttachmentRow.invoice_id == invoice_id)
    else:
        stmt = stmt.where(AttachmentRow.subscription_id == subscription_id, AttachmentRow.invoice_id == "")
    return session.scalars(stmt.order_by(AttachmentRow.create_time, AttachmentRow.attachment_id)).all()


def pending_details(session: Session, subscription_id: str) -> PendingDetailsRow | None:
    return session.get(PendingDetailsRow, subscription_id) if subscription_id else None


def last_payment(session: Session, invoice_id: str) -> PaymentRow | None:
    stmt = (
        select(PaymentRow)
        .where(PaymentRow.invoice_id == invoice_id)
        .order_by(PaymentRow.create_time.desc(), PaymentRow.payment_id.desc())
    )
    return session.scalars(stmt).first()


def succeeded_charges(session: Session, invoice_id: str) -> Sequence[PaymentRow]:
    stmt = select(PaymentRow).where(
        PaymentRow.invoice_id == invoice_id, PaymentRow.status == "succeeded", PaymentRow.charge_id != ""
    )
    return session.scalars(stmt).all()


def invoice_paid_subscriptions(session: Session, account_id: str) -> set[str]:
    """Subscriptions of the account that have (non-void) invoices paid by invoice."""
    stmt = select(InvoiceRow.subscription_id).where(
        InvoiceRow.account_id == account_id,
        InvoiceRow.payment_method_type == MethodType.INVOICE.value,
        InvoiceRow.status != InvoiceStatus.VOID.value,
    )
    return {s or "(none)" for s in session.scalars(stmt.distinct()).all()}


def installments(session: Session, subscription_id: str) -> Sequence[InstallmentRow]:
    stmt = (
        select(InstallmentRow)
        .where(InstallmentRow.subscription_id == subscription_id)
        .order_by(InstallmentRow.term_start_date, InstallmentRow.sequence)
    )
    return session.scalars(stmt).all()


def installment_of_invoice(session: Session, invoice_id: str) -> InstallmentRow | None:
    return session.scalars(select(InstallmentRow).where(InstallmentRow.invoice_id == invoice_id)).first()


def next_number(uow: UnitOfWork, series: str, year: int) -> str:
    """The next number of a series in a year. The counter row is updated in this transaction: it stays
    locked until commit (so concurrent issuers queue) and a rollback gives the number back."""
    s = uow.session
    table = CounterRow.__table__
    ins = pg_insert(table) if uow.db.is_postgres else sqlite_insert(table)
    s.execute(ins.values(series=series, year=year, last=0).on_conflict_do_nothing())
    result = s.execute(
        update(table)
        .where(table.c.series == series, table.c.year == year)
        .values(last=table.c.last + 1)
        .returning(table.c.last)
    )
    return format_number(series, year, int(result.scalar_one()))


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode() if offset else ""


def decode_page(page_size: int, page_token: str) -> tuple[int, int]:
    if page_size < 0:
        raise InvalidInput("page_size cannot be negative", field="page_size")
    size = min(page_size or DEFAULT_PAGE, MAX_PAGE)
    if not page_token:
        return size, 0
    try:
        raw = base64.urlsafe_b64decode(page_token.encode()).decode()
        if not raw.startswith("o:"):
            raise ValueError
        offset = int(raw[2:])
        if offset < 0:
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("page_token is not a token from a previous response", field="page_token") from None
    return size, offset


def list_invoices(
    session: Session, account_id: str, status: str, subscription_id: str, size: int, offset: int
) -> tuple[Sequence[InvoiceRow], bool]:
    stmt = select(InvoiceRow).where(InvoiceRow.account_id == account_id)
    if status:
        stmt = stmt.where(InvoiceRow.status == status)
    if subscription_id:
        stmt = stmt.where(InvoiceRow.subscription_id == subscription_id)
    stmt = stmt.order_by(InvoiceRow.issue_time.desc(), InvoiceRow.invoice_number.desc())
    rows = session.scalars(stmt.offset(offset).limit(size + 1)).all()
    return rows[:size], len(rows) > size


def list_credit_notes(
    session: Session, account_id: str, size: int, offset: int
) -> tuple[Sequence[CreditNoteRow], bool]:
    stmt = (
        select(CreditNoteRow)
        .where(CreditNoteRow.account_id == account_id)
        .order_by(CreditNoteRow.issue_time.desc(), CreditNoteRow.credit_note_number.desc())
    )
    rows = session.scalars(stmt.offset(offset).limit(size + 1)).all()
    return rows[:size], len(rows) > size


def account_invoices(session: Session, account_id: str) -> Sequence[InvoiceRow]:
    return session.scalars(select(InvoiceRow).where(InvoiceRow.account_id == account_id)).all()


def account_credit_notes(session: Session, account_id: str) -> Sequence[CreditNoteRow]:
    return session.scalars(select(CreditNoteRow).where(CreditNoteRow.account_id == account_id)).all()


def latest_currency(session: Session, account_id: str) -> str | None:
    stmt = (
        select(InvoiceRow.currency)
        .where(InvoiceRow.account_id == account_id)
        .order_by(InvoiceRow.issue_time.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def count_payers(session: Session, account_id: str) -> int:
    return (
        session.scalar(select(func.count()).select_from(PayerRow).where(PayerRow.account_id == account_id))
        or 0
    )

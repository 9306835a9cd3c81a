"""What the billing handlers share: their settings, input checks, and the views reads return."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from services.billing.adapters.credit_ledger import CreditEntryRow
from services.billing.adapters.tables import (
    AttachmentRow,
    InvoiceLineRow,
    InvoiceRow,
    PaymentMethodRow,
    PaymentRow,
    ProfileRow,
)
from services.billing.adapters.uow import BillingUnitOfWork
from services.billing.domain.document import Seller
from services.billing.domain.dunning import RetryStatus
from services.billing.domain.invoice import DEFAULT_NET_DAYS, MAX_ATTACHMENT_BYTES, InvoiceState
from services.billing.domain.model import Address, InvoiceStatus, TaxStatus
from services.billing.domain.tax import VatStatus
from shared.errors import InvalidInput, RuleViolation
from shared.money import minor_unit


@dataclass(frozen=True)
class Policy:
    """Settings the handlers need."""

    net_days: int = DEFAULT_NET_DAYS
    attachment_max_bytes: int = MAX_ATTACHMENT_BYTES
    seller: Seller = field(default_factory=Seller)


@dataclass(frozen=True)
class InvoiceView:
    """An invoice with its lines and PO documents, as reads and writes return it."""

    invoice: InvoiceRow
    lines: Sequence[InvoiceLineRow]
    attachments: Sequence[AttachmentRow]
    payments: Sequence[PaymentRow] = ()  # every payment attempt, oldest first
    next_retry_time: datetime | None = None  # a declined charge's next automatic retry
    credit: Sequence[CreditEntryRow] = ()  # account credit applied to it (and given back), oldest first


def invoice_view(uow: BillingUnitOfWork, row: InvoiceRow) -> InvoiceView:
    retry = uow.retries.get(row.invoice_id)
    return InvoiceView(
        row,
        list(uow.invoices.lines(row.invoice_id)),
        list(uow.attachments.of_invoice(row.invoice_id)),
        list(uow.payments.of_invoice(row.invoice_id)),
        retry.next_attempt_time
        if retry is not None and retry.status == RetryStatus.SCHEDULED.value
        else None,
        list(uow.account_credit.of_invoice(row.invoice_id)),
    )


def require(value: str, name: str) -> str:
    if not value or not value.strip():
        raise InvalidInput(f"{name} is required", field=name)
    return value.strip()


def currency(code: str) -> str:
    code = require(code, "currency_code").upper()
    minor_unit(code)
    return code


def tax_status(p: ProfileRow) -> TaxStatus:
    """The profile's tax status with its VAT id (a valid EU business id means reverse charge)."""
    return VatStatus(
        Address(p.country_code, p.region, p.city, p.postal_code, p.line1, p.line2),
        p.tax_exempt,
        p.exemption_certificate,
        p.exemption_expiry_date,
        tax_id=p.tax_id,
    )


def state(row: InvoiceRow) -> InvoiceState:
    """The money state of an invoice row (the rules of `domain.invoice` move it)."""
    return InvoiceState(
        invoice_number=row.invoice_number,
        currency=row.currency,
        total=row.total,
        status=InvoiceStatus(row.status),
        amount_paid=row.amount_paid,
        amount_credited=row.amount_credited,
        paid_time=row.paid_time,
        overdue_time=row.overdue_time,
        credit_applied=row.credit_applied,
        amount_due_credited=row.amount_due_credited,
    )


@contextmanager
def request_fields() -> Iterator[None]:
    """Name the request's own fields (country_code, region) in address errors of a profile-less order."""
    try:
        yield
    except InvalidInput as e:
        e.field_violations = [(f.removeprefix("address."), d) for f, d in e.field_violations]
        raise


def usable_method(uow: BillingUnitOfWork, account_id: str, payment_method_id: str) -> PaymentMethodRow:
    row = uow.payment_methods.require(require(payment_method_id, "payment_method_id"))
    if row.account_id != account_id:
        raise RuleViolation(
            f"payment method {payment_method_id} belongs to another account",
            reason="PAYMENT_METHOD_ACCOUNT_MISMATCH",
        )
    if row.removed:
        raise RuleViolation(
            f"payment method {payment_method_id} was removed", reason="PAYMENT_METHOD_NOT_USABLE"
        )
    return row

"""Money in: charging through the gateway, paying an open invoice (credit notes and the balance are in
`credits`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from services.billing import events
from services.billing.adapters.tables import InvoiceRow, PaymentMethodRow, PaymentRow
from services.billing.adapters.uow import BillingUnitOfWork
from services.billing.domain.dunning import RetryStatus
from services.billing.domain.gateway import PaymentGateway
from services.billing.domain.model import InstallmentStatus, MethodType
from services.billing.domain.payment import (
    Collection,
    PaymentOutcome,
    collection_on_payment,
    payment_outcome,
)
from services.billing.handlers.common import InvoiceView, invoice_view, require, state, usable_method
from shared.db import new_id


def collect(
    gateway: PaymentGateway,
    how: Collection,
    method: PaymentMethodRow | None,
    amount: Decimal,
    currency: str,
    idempotency_key: str,
) -> PaymentOutcome:
    """Charge when the rules say so (`how`), and read the outcome from the gateway's answer."""
    charge = None
    if how == Collection.CHARGE and method is not None:
        charge = gateway.charge(method.token, amount, currency, idempotency_key=idempotency_key)
    return payment_outcome(how, charge)


def payment_row(
    invoice_id: str,
    outcome: PaymentOutcome,
    amount: Decimal,
    currency: str,
    method: PaymentMethodRow | None,
    when: datetime,
) -> PaymentRow:
    """The record of one payment attempt (the charge at issue, a retry, a payment made by hand)."""
    return PaymentRow(
        payment_id=new_id("pay"),
        invoice_id=invoice_id,
        status=outcome.status.value,
        amount=amount,
        currency=currency,
        payment_method_id=method.payment_method_id if method else "",
        charge_id=outcome.charge_id,
        decline_reason=outcome.decline_reason,
        create_time=when,
    )


def mark_paid(uow: BillingUnitOfWork, row: InvoiceRow, amount: Decimal, when: datetime) -> None:
    paid = state(row).pay(amount, when)
    row.status = paid.status.value
    row.amount_paid = paid.amount_paid
    row.paid_time = when
    row.decline_reason = ""
    ins = uow.installments.of_invoice(row.invoice_id)
    if ins is not None:
        ins.status = InstallmentStatus.PAID.value
        uow.installments.save(ins)
    retry = uow.retries.get(row.invoice_id, lock=True)
    if retry is not None and retry.status != RetryStatus.PAID.value:  # paid: no more attempts
        retry.status, retry.next_attempt_time, retry.update_time = RetryStatus.PAID.value, None, when
        uow.retries.save(retry)
    uow.invoices.save(row)
    events.invoice_paid(uow, row)


def pay_invoice(
    uow: BillingUnitOfWork, gateway: PaymentGateway, request_id: str, invoice_id: str, payment_method_id: str
) -> tuple[InvoiceView, PaymentRow]:
    request_id = require(request_id, "request_id")
    row = uow.invoices.lock(require(invoice_id, "invoice_id"))
    state(row).require_open()
    method = usable_method(uow, row.account_id, payment_method_id or row.payment_method_id)
    now = uow.now
    amount = state(row).amount_due  # what is left after account credit and credit notes
    how = collection_on_payment(MethodType(method.type))
    outcome = collect(gateway, how, method, amount, row.currency, f"{request_id}:pay")
    payment = payment_row(row.invoice_id, outcome, amount, row.currency, method, now)
    if outcome.settles:
        mark_paid(uow, row, amount, now)
    else:
        row.decline_reason = outcome.decline_reason
        uow.invoices.save(row)
        events.payment_failed(uow, row, outcome.decline_reason)
    uow.payments.add(payment)
    return invoice_view(uow, row), payment

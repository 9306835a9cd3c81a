"""Money in and out: charging through the gateway, paying an open invoice, credit notes, the balance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.billing import events
from services.billing.adapters.tables import CreditNoteRow, InvoiceRow, PaymentMethodRow, PaymentRow
from services.billing.adapters.uow import BillingUnitOfWork
from services.billing.domain import credit as credit_rules
from services.billing.domain.balance import BalanceFigures, CreditFigures, InvoiceFigures, balances
from services.billing.domain.dunning import RetryStatus
from services.billing.domain.gateway import PaymentGateway
from services.billing.domain.invoice import AmountInput, amount_in, local_date, overdue_at
from services.billing.domain.model import InstallmentStatus, InvoiceStatus, MethodType
from services.billing.domain.numbering import CREDIT_NOTE_SERIES
from services.billing.domain.payment import (
    Collection,
    PaymentOutcome,
    collection_on_payment,
    payment_outcome,
)
from services.billing.handlers.common import InvoiceView, invoice_view, require, state, usable_method
from shared.db import Database, new_id
from shared.errors import RuleViolation
from shared.money import minor_unit
from shared.paging import next_offset_token, offset_page


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
    amount = row.total - row.amount_paid
    how = collection_on_payment(MethodType(method.type))
    outcome = collect(gateway, how, method, amount, row.currency, f"{request_id}:pay")
    payment = PaymentRow(
        payment_id=new_id("pay"),
        invoice_id=row.invoice_id,
        status=outcome.status.value,
        amount=amount,
        currency=row.currency,
        payment_method_id=method.payment_method_id,
        charge_id=outcome.charge_id,
        decline_reason=outcome.decline_reason,
        create_time=now,
    )
    if outcome.settles:
        mark_paid(uow, row, amount, now)
    else:
        row.decline_reason = outcome.decline_reason
        uow.invoices.save(row)
        events.payment_failed(uow, row, outcome.decline_reason)
    uow.payments.add(payment)
    return invoice_view(uow, row), payment


# --- credit notes and balance -------------------------------------------------------------------


def issue_credit_note(
    uow: BillingUnitOfWork,
    gateway: PaymentGateway,
    request_id: str,
    invoice_id: str,
    amount: AmountInput | None,
    reason: str,
) -> CreditNoteRow:
    """A credit note of `amount` (all that is left to credit when None), refunded through the gateway
    for card and PayPal charges, kept as cash balance otherwise."""
    if amount is not None:
        requested: Decimal | None = amount_in(amount, uow.invoices.get(invoice_id).currency, "amount")
    else:
        requested = None
    request_id = require(request_id, "request_id")
    row = uow.invoices.lock(require(invoice_id, "invoice_id"))
    value = credit_rules.credit_amount(
        requested, paid=row.amount_paid, credited=row.amount_credited, currency=row.currency
    )
    method_type = MethodType(row.payment_method_type) if row.payment_method_type else MethodType.INVOICE
    charges = uow.payments.succeeded_charges(row.invoice_id)
    settlement = credit_rules.settlement_for(method_type)
    refund_id = ""
    if settlement.value == "refund":
        if not charges:
            settlement = credit_rules.settlement_for(MethodType.INVOICE)
        else:
            result = gateway.refund(
                charges[-1].charge_id, value, row.currency, idempotency_key=f"{request_id}:refund"
            )
            if not result.succeeded:
                raise RuleViolation(
                    f"the gateway refused the refund ({result.failure_reason}); nothing was credited",
                    reason="REFUND_FAILED",
                )
            refund_id = result.refund_id
    now = uow.now
    year = local_date(now, row.time_zone).year
    note = CreditNoteRow(
        credit_note_id=new_id("cn"),
        credit_note_number=uow.invoices.next_number(CREDIT_NOTE_SERIES, year),
        account_id=row.account_id,
        invoice_id=row.invoice_id,
        invoice_number=row.invoice_number,
        subscription_id=row.subscription_id,
        amount=value,
        currency=row.currency,
        reason=reason.strip(),
        settlement=settlement.value,
        refund_id=refund_id,
        issue_time=now,
    )
    row.amount_credited = row.amount_credited + value
    uow.invoices.save(row)
    uow.credit_notes.add(note)
    events.credit_note_issued(uow, note, row)
    return note


@dataclass(frozen=True)
class CreditNotePage:
    credit_notes: list[CreditNoteRow]
    next_page_token: str


def list_credit_notes(db: Database, account_id: str, page_size: int, page_token: str) -> CreditNotePage:
    offset, size = offset_page(page_size, page_token)
    with db.reading() as uow:
        rows, more = uow.credit_notes.page(account_id, offset, size)
    return CreditNotePage(list(rows), next_offset_token(offset, size, more))


def get_balance(db: Database, account_id: str, currency: str) -> tuple[BalanceFigures, list[BalanceFigures]]:
    account_id = require(account_id, "account_id")
    now = db.clock.now()
    with db.reading() as uow:
        invoices = uow.invoices.of_account(account_id)
        notes = uow.credit_notes.of_account(account_id)
        latest = None if currency else uow.invoices.latest_currency(account_id)
    figures = balances(
        (
            InvoiceFigures(
                i.currency,
                InvoiceStatus(i.status),
                i.total,
                i.amount_paid,
                overdue=i.status == InvoiceStatus.OPEN.value and now >= overdue_at(i.due_date, i.time_zone),
            )
            for i in invoices
        ),
        (CreditFigures(n.currency, n.amount, credit_rules.Settlement(n.settlement)) for n in notes),
    )
    wanted = currency.strip().upper() if currency else (latest or "USD")
    minor_unit(wanted)
    return figures.get(wanted, BalanceFigures(wanted)), list(figures.values())

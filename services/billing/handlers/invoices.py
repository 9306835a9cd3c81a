"""Invoices: tax previews, the invoice of an order (with its installments), issuing, reading, voiding."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.billing import events
from services.billing.adapters.tables import (
    InstallmentRow,
    InvoiceLineRow,
    InvoiceRow,
    PaymentMethodRow,
    PaymentRow,
    ProfileRow,
)
from services.billing.adapters.uow import BillingUnitOfWork
from services.billing.domain import installments as inst
from services.billing.domain.commands import CreateInvoice
from services.billing.domain.gateway import PaymentGateway, normalize_email
from services.billing.domain.invoice import (
    Line,
    LineInput,
    draft_invoice,
    local_date,
    order_subtotal,
    price_lines,
    totals,
    zone,
)
from services.billing.domain.model import (
    Address,
    InstallmentStatus,
    InvoiceKind,
    InvoiceStatus,
    MethodType,
    TaxStatus,
)
from services.billing.domain.numbering import INVOICE_SERIES
from services.billing.domain.payment import collection_at_issue, installment_status_after
from services.billing.domain.payment_rules import eligibility
from services.billing.domain.tax import TaxDecision, decide_tax
from services.billing.handlers import credits, dunning
from services.billing.handlers.accounts import record_order_buyer
from services.billing.handlers.common import (
    InvoiceView,
    Policy,
    currency,
    invoice_view,
    request_fields,
    require,
    state,
    tax_status,
    usable_method,
)
from services.billing.handlers.payments import collect, payment_row
from shared.db import Database, new_id
from shared.errors import InvalidInput, NotFound, RuleViolation
from shared.paging import next_offset_token, offset_page

# --- tax ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Priced:
    lines: list[Line]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    decision: TaxDecision


def preview_tax(
    db: Database, account_id: str, currency_code: str, inputs: list[LineInput], country: str, region: str
) -> Priced:
    code = currency(currency_code)
    today = local_date(db.clock.now(), "UTC")
    with db.reading() as uow:
        prof = uow.profiles.get(account_id) if account_id else None
    if prof is not None and prof.country_code:
        status = tax_status(prof)
    elif country:
        status = TaxStatus(Address(country.strip().upper(), region.strip().upper()))
        with request_fields():
            decide_tax(status, today)
    else:
        raise NotFound(
            f"account {account_id!r} has no billing profile; give country_code to preview tax",
            reason="BILLING_PROFILE_NOT_FOUND",
        )
    decision = decide_tax(status, today)
    lines = price_lines(inputs, code, decision)
    t = totals(lines)
    return Priced(lines, t.subtotal, t.tax, t.total, decision)


# --- the invoice of an order --------------------------------------------------------------------


@dataclass
class Issued:
    invoice: InvoiceView
    payment: PaymentRow | None
    installments: list[InstallmentRow]


def _profile_for_order(uow: BillingUnitOfWork, cmd: CreateInvoice) -> ProfileRow:
    prof = uow.profiles.get(cmd.account_id)
    if prof is not None and prof.country_code:
        return prof
    if not cmd.country_code:
        raise RuleViolation(
            f"account {cmd.account_id} has no billing address; add a billing profile first",
            reason="BILLING_PROFILE_NOT_FOUND",
        )
    email = normalize_email(cmd.buyer_email, "buyer_email") if cmd.buyer_email else ""
    now = uow.now
    if prof is None:
        prof = ProfileRow(account_id=cmd.account_id, create_time=now)
    prof.buyer_email = prof.buyer_email or email
    prof.name = prof.name or cmd.buyer_name.strip()
    prof.language = cmd.language or prof.language or "en"
    prof.country_code = cmd.country_code.strip().upper()
    prof.region = cmd.region.strip().upper()
    prof.update_time = now
    with request_fields():
        decide_tax(tax_status(prof), local_date(now, "UTC"))
    uow.profiles.save(prof)
    return prof


def create_invoice(
    uow: BillingUnitOfWork, gateway: PaymentGateway, policy: Policy, cmd: CreateInvoice
) -> Issued:
    """Issue the invoice of an order, charge card or PayPal at once, and schedule later installments."""
    request_id = require(cmd.request_id, "request_id")
    previous = uow.invoices.by_request(request_id)
    if previous is not None:  # a retry that reached us under another idempotency record
        return Issued(
            invoice_view(uow, previous),
            uow.payments.last(previous.invoice_id),
            [
                i
                for i in uow.installments.of_subscription(previous.subscription_id)
                if i.first_invoice_id == previous.invoice_id
            ],
        )
    account_id = require(cmd.account_id, "account_id")
    if cmd.kind is None or cmd.kind == InvoiceKind.INSTALLMENT:
        raise InvalidInput("kind must be new, add_seats, renewal, align or upgrade", field="kind")
    code = currency(cmd.currency)
    tz = cmd.time_zone or "UTC"
    zone(tz)
    now = uow.now
    issue_day = local_date(now, tz)
    prof = _profile_for_order(uow, cmd)
    record_order_buyer(uow, prof, cmd.buyer_email)
    method = usable_method(uow, account_id, cmd.payment_method_id)
    mtype = MethodType(method.type)
    eligibility(
        mtype,
        prepay_only=prof.prepay_only,
        quote=cmd.quote,
        channel=cmd.channel,
        invoice_paid_subscriptions=uow.invoices.invoice_paid_subscriptions(account_id)
        if mtype == MethodType.INVOICE
        else set(),
    ).require()
    decision = decide_tax(tax_status(prof), issue_day)
    full = price_lines(cmd.lines, code, decision)
    subtotal = order_subtotal(full)
    schedule: list[inst.ScheduledInstallment] = []
    if subtotal > 0 and inst.uses_installments(cmd.plan, cmd.term, cmd.kind, issue_day):
        if not cmd.subscription_id:
            raise InvalidInput("installments need a subscription_id", field="subscription_id")
        term_start = cmd.term_start_date or issue_day
        schedule = inst.schedule([ln.amount for ln in full], term_start, code)
    lines = full
    installment_key = None
    if schedule:
        first_shares = inst.installment_inputs(inst.shares(cmd.lines, schedule[0]), 1, len(schedule))
        lines = price_lines(first_shares, code, decision)
        installment_key = inst.installment_key(cmd.subscription_id, schedule[0].due_date, 1)

    row, payment = issue(
        uow,
        gateway,
        policy,
        request_id=request_id,
        installment_key=installment_key,
        account_id=account_id,
        subscription_id=cmd.subscription_id,
        order_number=cmd.order_number,
        kind=cmd.kind,
        currency=code,
        lines=lines,
        decision=decision,
        prof=prof,
        method=method,
        tz=tz,
        installment_sequence=1 if schedule else 0,
        idempotency_key=f"{request_id}:charge",
    )
    rows: list[InstallmentRow] = []
    for item in schedule:
        first = item.sequence == 1
        status = (
            installment_status_after(row.status == InvoiceStatus.PAID.value)
            if first
            else InstallmentStatus.SCHEDULED
        )
        rows.append(
            InstallmentRow(
                installment_id=new_id("ins"),
                subscription_id=cmd.subscription_id,
                account_id=account_id,
                order_number=cmd.order_number,
                term_start_date=schedule[0].due_date,
                sequence=item.sequence,
                count=len(schedule),
                due_date=item.due_date,
                amount=item.amount,
                currency=code,
                status=status.value,
                invoice_id=row.invoice_id if first else "",
                payment_method_id=method.payment_method_id,
                time_zone=tz,
                lines_json=json.dumps([inst.share_to_json(li) for li in inst.shares(cmd.lines, item)]),
                first_invoice_id=row.invoice_id,
                create_time=now,
            )
        )
    uow.installments.add_all(rows)
    return Issued(invoice_view(uow, row), payment, rows)


def issue(
    uow: BillingUnitOfWork,
    gateway: PaymentGateway,
    policy: Policy,
    *,
    request_id: str | None,
    installment_key: str | None,
    account_id: str,
    subscription_id: str,
    order_number: str,
    kind: InvoiceKind,
    currency: str,
    lines: list[Line],
    decision: TaxDecision,
    prof: ProfileRow,
    method: PaymentMethodRow | None,
    tz: str,
    installment_sequence: int,
    idempotency_key: str,
    issue_time: datetime | None = None,
) -> tuple[InvoiceRow, PaymentRow]:
    """Build an invoice, charge card or PayPal, then number and store it and publish its events.

    The gateway is called before the number is taken, so the counter row is locked only for the short
    rest of the transaction, never across a charge. A rollback after the charge is safe: the retry
    charges with the same idempotency key, which the gateway answers with the same charge.
    """
    now = issue_time or uow.now
    draft = draft_invoice(lines, decision, now, tz, policy.net_days)
    invoice_id = new_id("inv")
    payer_list = [
        {"email": p.email, "name": p.name, "language": p.language} for p in uow.payers.of_account(account_id)
    ]
    # PO number, notes and documents saved for the renewal go on the renewal invoice only (rules §5)
    details = uow.pending_details.get(subscription_id) if kind == InvoiceKind.RENEWAL else None
    row = InvoiceRow(
        invoice_id=invoice_id,
        invoice_number="",
        request_id=request_id,
        installment_key=installment_key,
        account_id=account_id,
        subscription_id=subscription_id,
        order_number=order_number,
        kind=kind.value,
        status=InvoiceStatus.OPEN.value,
        currency=currency,
        subtotal=draft.subtotal,
        tax=draft.tax,
        total=draft.total,
        tax_rate=draft.tax_rate,
        tax_name=draft.tax_name,
        tax_exempt=draft.tax_exempt,
        issue_time=now,
        issue_date=draft.issue_date,
        due_date=draft.due_date,
        time_zone=tz,
        po_number=details.po_number if details else "",
        notes=details.notes if details else "",
        payment_method_id=method.payment_method_id if method else "",
        payment_method_type=method.type if method else "",
        installment_sequence=installment_sequence,
        buyer_email=prof.buyer_email,
        buyer_name=prof.name,
        country_code=prof.country_code,
        region=prof.region,
        city=prof.city,
        postal_code=prof.postal_code,
        line1=prof.line1,
        line2=prof.line2,
        tax_id=prof.tax_id,
        payers_json=json.dumps(payer_list),
    )
    # The account's credit in this currency is used first; only the rest is charged.
    row.credit_applied = credits.apply_account_credit(uow, account_id, currency, invoice_id, draft.total)
    to_charge = draft.total - row.credit_applied
    how = collection_at_issue(
        to_charge, MethodType(method.type) if method else None, method.removed if method else False
    )
    outcome = collect(gateway, how, method, to_charge, currency, idempotency_key)
    payment = payment_row(invoice_id, outcome, to_charge, currency, method, now)
    if outcome.settles:
        paid = state(row).pay(to_charge, now)
        row.status, row.amount_paid, row.paid_time = paid.status.value, paid.amount_paid, now
    elif outcome.declined:
        row.decline_reason = outcome.decline_reason
    line_rows = [
        InvoiceLineRow(
            invoice_id=invoice_id,
            position=pos,
            description=ln.description,
            quantity=ln.quantity,
            unit_price=ln.unit_price,
            amount=ln.amount,
            tax=ln.tax,
            tax_rate=ln.tax_rate,
            period_start=ln.period_start,
            period_end=ln.period_end,
            product_code=ln.product_code,
            explanation=ln.explanation,
        )
        for pos, ln in enumerate(draft.lines)
    ]
    if kind == InvoiceKind.RENEWAL and subscription_id:
        # The buyer's PO details for the subscription's renewal go on this renewal invoice; an add-seats
        # or alignment invoice before it leaves them waiting.
        for a in uow.attachments.pending(subscription_id):
            a.invoice_id = invoice_id
        if details is not None:
            uow.pending_details.remove(details)
    # The number is taken last: the counter row stays locked only for the rest of this transaction.
    row.invoice_number = uow.invoices.next_number(INVOICE_SERIES, draft.issue_date.year)
    uow.invoices.add_issued(row, line_rows)
    uow.payments.add(payment)
    events.invoice_issued(uow, row)
    if outcome.settles:
        events.invoice_paid(uow, row)
    elif outcome.declined:
        # a declined renewal or installment charge is retried on the dunning schedule
        plan = dunning.on_decline(uow, row, outcome.decline_reason, now)
        events.payment_failed(uow, row, outcome.decline_reason, plan)
    return row, payment


# --- reading and voiding ------------------------------------------------------------------------


def get_invoice(db: Database, invoice_id: str) -> InvoiceView:
    with db.reading() as uow:
        return invoice_view(uow, uow.invoices.get(invoice_id))


@dataclass(frozen=True)
class InvoicePage:
    invoices: list[InvoiceView]
    next_page_token: str


def list_invoices(
    db: Database,
    account_id: str,  # empty: every account (operators and services only; the permission check sees to it)
    status: InvoiceStatus | None,
    subscription_id: str,
    page_size: int,
    page_token: str,
) -> InvoicePage:
    offset, size = offset_page(page_size, page_token)
    with db.reading() as uow:
        rows, more = uow.invoices.page(
            account_id, status.value if status else "", subscription_id, offset, size
        )
        return InvoicePage([invoice_view(uow, r) for r in rows], next_offset_token(offset, size, more))


def void_invoice(uow: BillingUnitOfWork, invoice_id: str) -> InvoiceView:
    """Void an open invoice nothing was paid or credited on; account credit it used goes back."""
    row = uow.invoices.lock(require(invoice_id, "invoice_id"))
    voided = state(row).void()
    credits.release_credit(uow, row)
    row.status, row.credit_applied = voided.status.value, voided.credit_applied
    ins = uow.installments.of_invoice(row.invoice_id)
    if ins is not None:
        ins.status = InstallmentStatus.CANCELLED.value
        uow.installments.save(ins)
    uow.invoices.save(row)
    return invoice_view(uow, row)

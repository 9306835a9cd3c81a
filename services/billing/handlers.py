"""Billing use cases: one function per command, each inside the caller's unit of work.

A handler loads rows through the repository, asks the pure domain rules, saves, and writes the events
to the outbox in the same transaction. Money decisions (tax, installments, credits) are made in
`services.billing.domain`; the gateway is called with idempotency keys derived from the request id, so
a retried request is the same charge.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, text

from services.billing import events
from services.billing.adapters import directory
from services.billing.adapters import repository as repo
from services.billing.adapters.tables import (
    AttachmentRow,
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
from services.billing.domain import credit as credit_rules
from services.billing.domain import installments as inst
from services.billing.domain.access import Caller, buyer_after_profile, require_role
from services.billing.domain.balance import BalanceFigures, CreditFigures, InvoiceFigures, balances
from services.billing.domain.document import DocumentLine, InvoiceDocument, Seller
from services.billing.domain.gateway import PaymentGateway, normalize_email
from services.billing.domain.invoice import (
    DEFAULT_NET_DAYS,
    MAX_ATTACHMENT_BYTES,
    InvoiceState,
    Line,
    LineInput,
    NewAttachment,
    check_attachments,
    check_details,
    due_date,
    local_date,
    local_midnight,
    overdue_at,
    price_lines,
    totals,
    zone,
)
from services.billing.domain.model import (
    Address,
    Channel,
    InstallmentPlan,
    InstallmentStatus,
    InvoiceKind,
    InvoiceStatus,
    MethodType,
    PaymentStatus,
    TaxStatus,
    Term,
)
from services.billing.domain.numbering import CREDIT_NOTE_SERIES, INVOICE_SERIES
from services.billing.domain.payers import check_new_payer
from services.billing.domain.payment_rules import Eligibility, eligibility
from services.billing.domain.tax import TaxDecision, decide_tax
from shared.auth.policy import BUYER, PAYER, PRIMARY_ADMIN
from shared.db import Database, UnitOfWork, new_id
from shared.errors import InvalidInput, NotFound, RuleViolation
from shared.money import minor_unit
from tenure.common.v1 import common_pb2

log = logging.getLogger("tenure.billing")


@dataclass(frozen=True)
class Policy:
    """Settings the handlers need."""

    net_days: int = DEFAULT_NET_DAYS
    attachment_max_bytes: int = MAX_ATTACHMENT_BYTES
    seller: Seller = field(default_factory=Seller)


def _require(value: str, name: str) -> str:
    if not value or not value.strip():
        raise InvalidInput(f"{name} is required", field=name)
    return value.strip()


def _currency(code: str) -> str:
    code = _require(code, "currency_code").upper()
    minor_unit(code)
    return code


def _tax_status(p: ProfileRow) -> TaxStatus:
    return TaxStatus(
        Address(p.country_code, p.region, p.city, p.postal_code, p.line1, p.line2),
        p.tax_exempt,
        p.exemption_certificate,
        p.exemption_expiry_date,
    )


@contextmanager
def _request_fields():
    """Name the request's own fields (country_code, region) in address errors of a profile-less order."""
    try:
        yield
    except InvalidInput as e:
        e.field_violations = [(f.removeprefix("address."), d) for f, d in e.field_violations]
        raise


# --- billing profiles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileInput:
    account_id: str
    buyer_email: str
    name: str
    address: Address
    tax_id: str = ""
    tax_exempt: bool = False
    exemption_certificate: str = ""
    exemption_expiry_date: date | None = None
    language: str = ""


# --- accounts and their buyer ---------------------------------------------------------------------


def _enter_account(
    uow: UnitOfWork, account_id: str, caller: Caller, allowed: tuple[str, ...], what: str
) -> bool:
    """Lock the account for this unit of work; True when `caller` (a person) opens it now.

    The permission table let a person without a role in because the account had no team. Under the
    lock that is checked again: when someone else opened it meanwhile, the person goes on only with a
    role the table would have accepted (a stranger gets NOT_FOUND, as from the table)."""
    uow.lock_key(f"account:{account_id}")
    if not caller.is_person:
        return False
    s = uow.session
    roles = directory.roles(s, account_id, caller.email)
    if roles & set(allowed):
        return False
    if not directory.known(s, account_id):
        return True
    require_role(roles, allowed, account_id, what)
    return False


def _open_account(uow: UnitOfWork, prof: ProfileRow, buyer_email: str, *, announce: bool = True) -> None:
    """Make `buyer_email` the account's buyer and primary admin here, in this transaction (so they can act
    at once), and (`announce`) tell entitlement, which builds the team and echoes the roles back.

    A payment method added before the first order does not announce the account: it knows neither the
    buyer's name nor language, and the order that follows (or a billing profile) opens the team with them
    (SPEC §7: an account comes into being with its first order or billing profile)."""
    for role in (BUYER, PRIMARY_ADMIN):
        directory.members.grant(uow.session, prof.account_id, buyer_email, role)
    prof.buyer_email = buyer_email
    if announce:
        events.account_opened(uow, prof.account_id, buyer_email, prof.name, prof.language)


def upsert_profile(uow: UnitOfWork, cmd: ProfileInput, caller: Caller) -> ProfileRow:
    """Create or change the billing profile. The first profile of an account without a team opens it
    (`buyer_after_profile` says who its buyer is); the buyer of an account that has one never changes
    here: it follows entitlement's role events (`role_changed`)."""
    account_id = _require(cmd.account_id, "account_id")
    requested = normalize_email(cmd.buyer_email, "buyer_email") if cmd.buyer_email.strip() else ""
    country = (cmd.address.country_code or "").strip().upper()
    region = (cmd.address.region or "").strip().upper()
    status = TaxStatus(
        Address(country, region), cmd.tax_exempt, cmd.exemption_certificate.strip(), cmd.exemption_expiry_date
    )
    # Validates the country and region against the rate table (bad input changes nothing).
    decide_tax(status, local_date(uow.now, "UTC"))
    if cmd.tax_exempt and not cmd.exemption_certificate.strip():
        raise InvalidInput(
            "a tax exemption needs the reference of its certificate",
            field="exemption_certificate",
            reason="EXEMPTION_CERTIFICATE_REQUIRED",
        )
    _enter_account(uow, account_id, caller, (BUYER,), "change the billing profile")
    current = directory.buyer(uow.session, account_id)
    buyer = buyer_after_profile(current, requested, caller)
    now = uow.now
    row = uow.session.get(ProfileRow, account_id)
    if row is None:
        row = ProfileRow(account_id=account_id, create_time=now)
        uow.session.add(row)
    row.buyer_email = buyer or row.buyer_email
    row.name = cmd.name.strip()
    row.language = (cmd.language or row.language or "en").strip()
    row.country_code = country
    row.region = region
    row.city = cmd.address.city.strip()
    row.postal_code = cmd.address.postal_code.strip()
    row.line1 = cmd.address.line1.strip()
    row.line2 = cmd.address.line2.strip()
    row.tax_id = cmd.tax_id.strip()
    row.tax_exempt = cmd.tax_exempt
    row.exemption_certificate = cmd.exemption_certificate.strip()
    row.exemption_expiry_date = cmd.exemption_expiry_date
    row.update_time = now
    if buyer and not current:
        _open_account(uow, row, buyer)
    uow.session.flush()
    return row


def role_changed(uow: UnitOfWork, event) -> None:
    """`entitlement.role_changed`: keep the projection of the teams, and the profile's buyer with it (an
    operator's ChangeBuyer grants the new buyer; the grant is what billing follows)."""
    change = event.role_changed
    directory.members.apply_role_changed(uow.session, change)
    if not change.granted or common_pb2.Role.Name(change.role) != f"ROLE_{BUYER}":
        return
    prof = uow.session.get(ProfileRow, change.account_id)
    email = change.email.strip().lower()
    if prof is not None and prof.buyer_email != email:
        prof.buyer_email = email
        prof.update_time = uow.now
        uow.session.flush()


def mark_prepay_only(uow: UnitOfWork, account_id: str, reason: str) -> ProfileRow:
    account_id = _require(account_id, "account_id")
    now = uow.now
    row = uow.session.get(ProfileRow, account_id)
    if row is None:
        row = ProfileRow(account_id=account_id, create_time=now, update_time=now)
        uow.session.add(row)
    if not row.prepay_only:
        row.prepay_only = True
        row.prepay_only_reason = reason.strip() or "a subscription was cancelled for an unpaid invoice"
        row.update_time = now
    uow.session.flush()
    return row


# --- payment methods ----------------------------------------------------------------------------


def add_payment_method(
    uow: UnitOfWork,
    gateway: PaymentGateway,
    account_id: str,
    method: MethodType | None,
    card_number: str,
    paypal_email: str,
    caller: Caller,
) -> PaymentMethodRow:
    """Store a payment method. A person's first one on an account without a team opens the account
    with them as its buyer (and a billing profile naming them, filled in later)."""
    account_id = _require(account_id, "account_id")
    row = PaymentMethodRow(
        payment_method_id=new_id("pm"), account_id=account_id, create_time=uow.now, type=""
    )
    if method == MethodType.CARD:
        card = gateway.tokenize_card(card_number)
        row.type, row.token, row.last4, row.brand = method.value, card.token, card.last4, card.brand
    elif method == MethodType.PAYPAL:
        email = normalize_email(paypal_email, "paypal_email")
        row.type, row.token, row.paypal_email = method.value, gateway.tokenize_paypal(email), email
    elif method == MethodType.INVOICE:
        row.type = method.value
    else:
        raise InvalidInput("type must be card, PayPal or invoice", field="type")
    if _enter_account(uow, account_id, caller, (BUYER, PAYER), "add payment methods"):
        prof = uow.session.get(ProfileRow, account_id)
        if prof is None:
            prof = ProfileRow(account_id=account_id, create_time=uow.now, update_time=uow.now)
            uow.session.add(prof)
        _open_account(uow, prof, normalize_email(caller.email), announce=False)
    uow.session.add(row)
    uow.session.flush()
    return row


def remove_payment_method(uow: UnitOfWork, account_id: str, payment_method_id: str) -> PaymentMethodRow:
    row = repo.payment_method(uow.session, payment_method_id)
    if row.account_id != account_id or row.removed:
        raise NotFound(
            f"no payment method {payment_method_id!r} on this account", reason="PAYMENT_METHOD_NOT_FOUND"
        )
    row.removed = True
    uow.session.flush()
    return row


def _usable_method(session, account_id: str, payment_method_id: str) -> PaymentMethodRow:
    row = repo.payment_method(session, _require(payment_method_id, "payment_method_id"))
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


def check_payment_method(
    session,
    account_id: str,
    payment_method_id: str,
    method: MethodType | None,
    channel: Channel | None,
    quote: bool,
) -> Eligibility:
    account_id = _require(account_id, "account_id")
    if payment_method_id:
        method = MethodType(_usable_method(session, account_id, payment_method_id).type)
    if method is None:
        raise InvalidInput("give a payment_method_id or a type", field="type")
    prof = repo.profile(session, account_id)
    return eligibility(
        method,
        prepay_only=bool(prof and prof.prepay_only),
        quote=quote,
        channel=channel,
        invoice_paid_subscriptions=repo.invoice_paid_subscriptions(session, account_id)
        if method == MethodType.INVOICE
        else set(),
    )


# --- payers -------------------------------------------------------------------------------------


def add_payer(
    uow: UnitOfWork, account_id: str, email: str, name: str, language: str, caller: Caller
) -> PayerRow:
    account_id = _require(account_id, "account_id")
    if uow.db.is_postgres:
        # Serialize payer changes of one account, so two concurrent additions cannot both be the fifth.
        uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"payers:{account_id}"})
    existing = [p.email for p in repo.payers(uow.session, account_id)]
    value = check_new_payer(existing, email)
    row = PayerRow(
        account_id=account_id,
        email=value,
        name=name.strip(),
        language=(language or "en").strip(),
        create_time=uow.now,
    )
    uow.session.add(row)
    uow.session.flush()
    events.payer_changed(uow, row, granted=True, actor_email=caller.label)
    return row


def remove_payer(uow: UnitOfWork, account_id: str, email: str, caller: Caller) -> PayerRow:
    value = normalize_email(email)
    row = uow.session.get(PayerRow, (_require(account_id, "account_id"), value))
    if row is None:
        raise NotFound(f"{value} is not a payer of this account", reason="PAYER_NOT_FOUND")
    uow.session.delete(row)
    uow.session.flush()
    events.payer_changed(uow, row, granted=False, actor_email=caller.label)
    return row


# --- tax ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Priced:
    lines: list[Line]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    decision: TaxDecision


def preview_tax(
    session, account_id: str, currency: str, inputs: list[LineInput], country: str, region: str, today: date
) -> Priced:
    currency = _currency(currency)
    prof = repo.profile(session, account_id) if account_id else None
    if prof is not None and prof.country_code:
        status = _tax_status(prof)
    elif country:
        status = TaxStatus(Address(country.strip().upper(), region.strip().upper()))
        with _request_fields():
            decide_tax(status, today)
    else:
        raise NotFound(
            f"account {account_id!r} has no billing profile; give country_code to preview tax",
            reason="BILLING_PROFILE_NOT_FOUND",
        )
    decision = decide_tax(status, today)
    lines = price_lines(inputs, currency, decision)
    t = totals(lines)
    return Priced(lines, t.subtotal, t.tax, t.total, decision)


# --- invoices -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateInvoice:
    request_id: str
    account_id: str
    subscription_id: str
    order_number: str
    kind: InvoiceKind | None
    currency: str
    lines: list[LineInput]
    payment_method_id: str
    plan: InstallmentPlan = InstallmentPlan.AUTO
    term: Term | None = None
    term_start_date: date | None = None
    channel: Channel | None = None
    quote: bool = False
    time_zone: str = "UTC"
    buyer_email: str = ""
    buyer_name: str = ""
    country_code: str = ""
    region: str = ""
    language: str = ""


@dataclass
class Issued:
    invoice: InvoiceRow
    payment: PaymentRow | None
    installments: list[InstallmentRow]


def _profile_for_order(uow: UnitOfWork, cmd: CreateInvoice) -> ProfileRow:
    prof = uow.session.get(ProfileRow, cmd.account_id)
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
        uow.session.add(prof)
    prof.buyer_email = prof.buyer_email or email
    prof.name = prof.name or cmd.buyer_name.strip()
    prof.language = cmd.language or prof.language or "en"
    prof.country_code = cmd.country_code.strip().upper()
    prof.region = cmd.region.strip().upper()
    prof.update_time = now
    with _request_fields():
        decide_tax(_tax_status(prof), local_date(now, "UTC"))
    uow.session.flush()
    return prof


def _record_order_buyer(uow: UnitOfWork, prof: ProfileRow, buyer_email: str) -> None:
    """An order on an account billing knows no buyer of: subscription opened the account with this
    order, so its buyer is the account's buyer and primary admin here too (entitlement, told by
    subscription, builds the team)."""
    if not buyer_email.strip() or directory.buyer(uow.session, prof.account_id):
        return
    uow.lock_key(f"account:{prof.account_id}")
    if directory.buyer(uow.session, prof.account_id):
        return
    email = normalize_email(buyer_email, "buyer_email")
    for role in (BUYER, PRIMARY_ADMIN):
        directory.members.grant(uow.session, prof.account_id, email, role)
    prof.buyer_email = email


def create_invoice(uow: UnitOfWork, gateway: PaymentGateway, policy: Policy, cmd: CreateInvoice) -> Issued:
    """Issue the invoice of an order, charge card or PayPal at once, and schedule later installments."""
    request_id = _require(cmd.request_id, "request_id")
    previous = repo.invoice_by_request(uow.session, request_id)
    if previous is not None:  # a retry that reached us under another idempotency record
        return Issued(
            previous,
            repo.last_payment(uow.session, previous.invoice_id),
            [
                i
                for i in repo.installments(uow.session, previous.subscription_id)
                if i.first_invoice_id == previous.invoice_id
            ],
        )
    account_id = _require(cmd.account_id, "account_id")
    if cmd.kind is None or cmd.kind == InvoiceKind.INSTALLMENT:
        raise InvalidInput("kind must be new, add_seats, renewal, align or upgrade", field="kind")
    currency = _currency(cmd.currency)
    tz = cmd.time_zone or "UTC"
    zone(tz)
    now = uow.now
    issue_day = local_date(now, tz)
    prof = _profile_for_order(uow, cmd)
    _record_order_buyer(uow, prof, cmd.buyer_email)
    method = _usable_method(uow.session, account_id, cmd.payment_method_id)
    mtype = MethodType(method.type)
    eligibility(
        mtype,
        prepay_only=prof.prepay_only,
        quote=cmd.quote,
        channel=cmd.channel,
        invoice_paid_subscriptions=repo.invoice_paid_subscriptions(uow.session, account_id)
        if mtype == MethodType.INVOICE
        else set(),
    ).require()
    decision = decide_tax(_tax_status(prof), issue_day)
    full = price_lines(cmd.lines, currency, decision)
    subtotal = totals(full).subtotal
    if subtotal < 0:
        raise InvalidInput(
            "the lines add up to less than zero", field="lines", reason="INVOICE_TOTAL_NEGATIVE"
        )
    schedule: list[inst.ScheduledInstallment] = []
    if subtotal > 0 and inst.uses_installments(cmd.plan, cmd.term, cmd.kind, issue_day):
        if not cmd.subscription_id:
            raise InvalidInput("installments need a subscription_id", field="subscription_id")
        term_start = cmd.term_start_date or issue_day
        schedule = inst.schedule([ln.amount for ln in full], term_start, currency)
    lines = full
    installment_key = None
    if schedule:
        lines = _installment_lines(cmd.lines, schedule[0], len(schedule), currency, decision)
        installment_key = _installment_key(cmd.subscription_id, schedule[0].due_date, 1)

    row, payment = _issue(
        uow,
        gateway,
        policy,
        request_id=request_id,
        installment_key=installment_key,
        account_id=account_id,
        subscription_id=cmd.subscription_id,
        order_number=cmd.order_number,
        kind=cmd.kind,
        currency=currency,
        lines=lines,
        decision=decision,
        prof=prof,
        method=method,
        tz=tz,
        installment_sequence=1 if schedule else 0,
        idempotency_key=f"{request_id}:charge",
    )
    invoice_id = row.invoice_id
    rows: list[InstallmentRow] = []
    for item in schedule:
        share_lines = [
            {
                "description": li.description.strip(),
                "quantity": li.quantity,
                "unit_price": str(li.unit_price),
                "period_start": li.period_start.isoformat() if li.period_start else None,
                "period_end": li.period_end.isoformat() if li.period_end else None,
                "product_code": li.product_code,
                "amount": str(share),
            }
            for li, share in zip(cmd.lines, item.line_amounts, strict=True)
        ]
        first = item.sequence == 1
        status = InstallmentStatus.SCHEDULED
        if first:
            status = (
                InstallmentStatus.PAID
                if row.status == InvoiceStatus.PAID.value
                else InstallmentStatus.INVOICED
            )
        ir = InstallmentRow(
            installment_id=new_id("ins"),
            subscription_id=cmd.subscription_id,
            account_id=account_id,
            order_number=cmd.order_number,
            term_start_date=schedule[0].due_date,
            sequence=item.sequence,
            count=len(schedule),
            due_date=item.due_date,
            amount=item.amount,
            currency=currency,
            status=status.value,
            invoice_id=invoice_id if first else "",
            payment_method_id=method.payment_method_id,
            time_zone=tz,
            lines_json=json.dumps(share_lines),
            first_invoice_id=invoice_id,
            create_time=now,
        )
        uow.session.add(ir)
        rows.append(ir)
    uow.session.flush()
    return Issued(row, payment, rows)


def _installment_key(subscription_id: str, term_start: date, sequence: int) -> str:
    return f"{subscription_id}:{term_start.isoformat()}:{sequence}"


def _installment_lines(
    inputs: list[LineInput], item: inst.ScheduledInstallment, count: int, currency: str, decision: TaxDecision
) -> list[Line]:
    shares = [
        LineInput(
            description=f"{li.description.strip()} (installment {item.sequence} of {count})",
            quantity=li.quantity,
            unit_price=li.unit_price,
            period_start=li.period_start,
            period_end=li.period_end,
            amount=share,
            product_code=li.product_code,
        )
        for li, share in zip(inputs, item.line_amounts, strict=True)
    ]
    return price_lines(shares, currency, decision)


def _issue(
    uow: UnitOfWork,
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
    issue_day = local_date(now, tz)
    t = totals(lines)
    if t.total < 0:
        raise InvalidInput(
            "the invoice total would be negative", field="lines", reason="INVOICE_TOTAL_NEGATIVE"
        )
    invoice_id = new_id("inv")
    payer_list = [
        {"email": p.email, "name": p.name, "language": p.language}
        for p in repo.payers(uow.session, account_id)
    ]
    details = repo.pending_details(uow.session, subscription_id)
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
        subtotal=t.subtotal,
        tax=t.tax,
        total=t.total,
        tax_rate=decision.rate,
        tax_name=decision.name,
        tax_exempt=decision.exempt,
        issue_time=now,
        issue_date=issue_day,
        due_date=due_date(issue_day, policy.net_days),
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
    payment = PaymentRow(
        payment_id=new_id("pay"),
        invoice_id=invoice_id,
        status=PaymentStatus.PENDING.value,
        amount=row.total,
        currency=currency,
        payment_method_id=method.payment_method_id if method else "",
        create_time=now,
    )
    if row.total == 0:
        payment.status = PaymentStatus.NOT_REQUIRED.value
    elif method is None or method.removed:
        payment.status = PaymentStatus.DECLINED.value
        payment.decline_reason = "payment_method_unavailable"
    elif method.type in (MethodType.CARD.value, MethodType.PAYPAL.value):
        result = gateway.charge(method.token, row.total, currency, idempotency_key=idempotency_key)
        if result.succeeded:
            payment.status = PaymentStatus.SUCCEEDED.value
            payment.charge_id = result.charge_id
        else:
            payment.status = PaymentStatus.DECLINED.value
            payment.decline_reason = result.decline_reason
    paid = payment.status in (PaymentStatus.SUCCEEDED.value, PaymentStatus.NOT_REQUIRED.value)
    if paid:
        state = _state(row).pay(row.total, now)
        row.status, row.amount_paid, row.paid_time = state.status.value, state.amount_paid, now
    elif payment.status == PaymentStatus.DECLINED.value:
        row.decline_reason = payment.decline_reason

    for pos, ln in enumerate(lines):
        uow.session.add(
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
            )
        )
    if details is not None:
        # The buyer's PO details for the subscription's next invoice go on this one.
        for a in repo.attachments(uow.session, subscription_id=subscription_id):
            a.invoice_id = invoice_id
        uow.session.delete(details)
    # The number is taken last: the counter row stays locked only for the rest of this transaction.
    row.invoice_number = repo.next_number(uow, INVOICE_SERIES, issue_day.year)
    uow.session.add(row)
    uow.session.add(payment)
    uow.session.flush()
    events.invoice_issued(uow, row)
    if paid:
        events.invoice_paid(uow, row)
    elif payment.status == PaymentStatus.DECLINED.value:
        events.payment_failed(uow, row, payment.decline_reason)
    return row, payment


def _mark_paid(uow: UnitOfWork, row: InvoiceRow, amount: Decimal, when: datetime) -> None:

    state = _state(row).pay(amount, when)
    row.status = state.status.value
    row.amount_paid = state.amount_paid
    row.paid_time = when
    row.decline_reason = ""
    ins = repo.installment_of_invoice(uow.session, row.invoice_id)
    if ins is not None:
        ins.status = InstallmentStatus.PAID.value
    uow.session.flush()
    events.invoice_paid(uow, row)


def _state(row: InvoiceRow) -> InvoiceState:
    return InvoiceState(
        invoice_number=row.invoice_number,
        currency=row.currency,
        total=row.total,
        status=InvoiceStatus(row.status),
        amount_paid=row.amount_paid,
        amount_credited=row.amount_credited,
        paid_time=row.paid_time,
        overdue_time=row.overdue_time,
    )


def pay_invoice(
    uow: UnitOfWork, gateway: PaymentGateway, request_id: str, invoice_id: str, payment_method_id: str
) -> tuple[InvoiceRow, PaymentRow]:
    request_id = _require(request_id, "request_id")
    row = repo.lock_invoice(uow, _require(invoice_id, "invoice_id"))
    _state(row).require_open()
    method = _usable_method(uow.session, row.account_id, payment_method_id or row.payment_method_id)
    now = uow.now
    payment = PaymentRow(
        payment_id=new_id("pay"),
        invoice_id=row.invoice_id,
        status=PaymentStatus.PENDING.value,
        amount=row.total - row.amount_paid,
        currency=row.currency,
        payment_method_id=method.payment_method_id,
        create_time=now,
    )
    if method.type == MethodType.INVOICE.value:
        # A bank transfer received for a pay-by-invoice invoice.
        payment.status = PaymentStatus.SUCCEEDED.value
        _mark_paid(uow, row, payment.amount, now)
    else:
        result = gateway.charge(
            method.token, payment.amount, row.currency, idempotency_key=f"{request_id}:pay"
        )
        if result.succeeded:
            payment.status = PaymentStatus.SUCCEEDED.value
            payment.charge_id = result.charge_id
            _mark_paid(uow, row, payment.amount, now)
        else:
            payment.status = PaymentStatus.DECLINED.value
            payment.decline_reason = result.decline_reason
            row.decline_reason = result.decline_reason
            uow.session.flush()
            events.payment_failed(uow, row, result.decline_reason)
    uow.session.add(payment)
    uow.session.flush()
    return row, payment


def void_invoice(uow: UnitOfWork, invoice_id: str) -> InvoiceRow:
    row = repo.lock_invoice(uow, _require(invoice_id, "invoice_id"))
    row.status = _state(row).void().status.value
    ins = repo.installment_of_invoice(uow.session, row.invoice_id)
    if ins is not None:
        ins.status = InstallmentStatus.CANCELLED.value
    uow.session.flush()
    return row


@dataclass(frozen=True)
class DetailsUpdate:
    invoice_id: str
    subscription_id: str
    po_number: str | None
    notes: str | None
    attachments: list[tuple[str, str, bytes]]
    remove_attachment_ids: list[str]


def update_details(
    uow: UnitOfWork, policy: Policy, cmd: DetailsUpdate
) -> tuple[InvoiceRow | None, str, str, list[AttachmentRow]]:
    """Edit the PO number, notes and PO documents of an open invoice or of a subscription's next invoice."""
    check_details(cmd.po_number, cmd.notes)
    if not cmd.invoice_id and not cmd.subscription_id:
        raise InvalidInput("give an invoice_id or a subscription_id", field="target")
    now = uow.now
    inv = None
    if cmd.invoice_id:
        inv = repo.lock_invoice(uow, cmd.invoice_id)
        _state(inv).require_open()
        existing = list(repo.attachments(uow.session, invoice_id=inv.invoice_id))
    else:
        existing = list(repo.attachments(uow.session, subscription_id=cmd.subscription_id))
    by_id = {a.attachment_id: a for a in existing}
    for aid in cmd.remove_attachment_ids:
        if aid not in by_id:
            raise NotFound(f"no attachment {aid!r} here", reason="NOT_FOUND")
    new = [NewAttachment(f, ct, len(content)) for f, ct, content in cmd.attachments]
    check_attachments(len(existing), len(set(cmd.remove_attachment_ids)), new, policy.attachment_max_bytes)
    for aid in set(cmd.remove_attachment_ids):
        uow.session.delete(by_id.pop(aid))
    kept = list(by_id.values())
    for f, ct, content in cmd.attachments:
        a = AttachmentRow(
            attachment_id=new_id("att"),
            invoice_id=inv.invoice_id if inv else "",
            subscription_id=inv.subscription_id if inv else cmd.subscription_id,
            filename=f.strip(),
            content_type=ct,
            size_bytes=len(content),
            content=content,
            create_time=now,
        )
        uow.session.add(a)
        kept.append(a)
    if inv is not None:
        if cmd.po_number is not None:
            inv.po_number = cmd.po_number.strip()
        if cmd.notes is not None:
            inv.notes = cmd.notes
        uow.session.flush()
        return inv, inv.po_number, inv.notes, kept
    pending = repo.pending_details(uow.session, cmd.subscription_id)
    if pending is None:
        pending = PendingDetailsRow(subscription_id=cmd.subscription_id, update_time=now)
        uow.session.add(pending)
    if cmd.po_number is not None:
        pending.po_number = cmd.po_number.strip()
    if cmd.notes is not None:
        pending.notes = cmd.notes
    pending.update_time = now
    uow.session.flush()
    return None, pending.po_number, pending.notes, kept


def invoice_document(session, invoice_id: str, policy: Policy) -> InvoiceDocument:
    row = repo.invoice(session, invoice_id)
    method = session.get(PaymentMethodRow, row.payment_method_id) if row.payment_method_id else None
    label = ""
    if method is not None:
        if method.type == MethodType.CARD.value:
            label = f"{method.brand} card ending {method.last4}"
        elif method.type == MethodType.PAYPAL.value:
            label = f"PayPal ({method.paypal_email})"
        else:
            label = "bank transfer"
    installment = ""
    if row.installment_sequence:
        ins = repo.installment_of_invoice(session, row.invoice_id)
        count = ins.count if ins else 3
        installment = f"Installment {row.installment_sequence} of {count}"
    return InvoiceDocument(
        invoice_number=row.invoice_number,
        issue_date=row.issue_date,
        due_date=row.due_date,
        currency=row.currency,
        buyer_name=row.buyer_name,
        buyer_email=row.buyer_email,
        buyer_address=Address(row.country_code, row.region, row.city, row.postal_code, row.line1, row.line2),
        lines=tuple(
            DocumentLine(
                ln.description,
                ln.quantity,
                ln.unit_price,
                ln.amount,
                ln.tax,
                ln.tax_rate,
                ln.period_start,
                ln.period_end,
            )
            for ln in repo.lines(session, row.invoice_id)
        ),
        subtotal=row.subtotal,
        tax=row.tax,
        total=row.total,
        status=row.status,
        amount_paid=row.amount_paid,
        payment_method=MethodType(row.payment_method_type) if row.payment_method_type else None,
        payment_method_label=label,
        order_number=row.order_number,
        po_number=row.po_number,
        notes=row.notes,
        buyer_tax_id=row.tax_id,
        tax_exempt=row.tax_exempt,
        tax_name=row.tax_name or "Tax",
        payers=tuple(p["email"] for p in json.loads(row.payers_json)),
        installment=installment,
        seller=policy.seller,
    )


# --- installments -------------------------------------------------------------------------------


def cancel_installments(uow: UnitOfWork, subscription_id: str) -> int:
    stmt = select(InstallmentRow).where(
        InstallmentRow.subscription_id == _require(subscription_id, "subscription_id"),
        InstallmentRow.status == InstallmentStatus.SCHEDULED.value,
    )
    # Wait for a sweep that is invoicing one of them; once it commits, that one is no longer scheduled.
    rows = uow.session.scalars(uow.for_update(stmt, skip_locked=False)).all()
    for r in rows:
        r.status = InstallmentStatus.CANCELLED.value
    uow.session.flush()
    return len(rows)


# --- credit notes and balance -------------------------------------------------------------------


def issue_credit_note(
    uow: UnitOfWork,
    gateway: PaymentGateway,
    request_id: str,
    invoice_id: str,
    amount: Decimal | None,
    reason: str,
) -> CreditNoteRow:

    request_id = _require(request_id, "request_id")
    row = repo.lock_invoice(uow, _require(invoice_id, "invoice_id"))
    value = credit_rules.credit_amount(
        amount, paid=row.amount_paid, credited=row.amount_credited, currency=row.currency
    )
    method_type = MethodType(row.payment_method_type) if row.payment_method_type else MethodType.INVOICE
    charges = repo.succeeded_charges(uow.session, row.invoice_id)
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
        credit_note_number=repo.next_number(uow, CREDIT_NOTE_SERIES, year),
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
    uow.session.add(note)
    uow.session.flush()
    events.credit_note_issued(uow, note, row)
    return note


def get_balance(
    session, account_id: str, currency: str, now: datetime
) -> tuple[BalanceFigures, list[BalanceFigures]]:
    account_id = _require(account_id, "account_id")
    invoices = repo.account_invoices(session, account_id)
    notes = repo.account_credit_notes(session, account_id)
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
    wanted = currency.strip().upper() if currency else (repo.latest_currency(session, account_id) or "USD")
    minor_unit(wanted)
    return figures.get(wanted, BalanceFigures(wanted)), list(figures.values())


# --- sweep --------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    issued: int = 0
    overdue: int = 0
    paid: int = 0
    payment_failed: int = 0


SWEEP_BATCH = 100


def sweep(db: Database, gateway: PaymentGateway, policy: Policy, as_of: datetime) -> SweepResult:
    """Issue the installment invoices that have come due and mark open invoices overdue at their due date.

    Installments are claimed one at a time with FOR UPDATE SKIP LOCKED (PostgreSQL), so replicas share
    the work; the unique installment key on invoices means a raced or repeated sweep never issues one
    twice. Each installment is its own transaction, so one failure does not hold back the others.
    """
    result = SweepResult()
    # A date bound wide enough for every zone; the exact local midnight is checked per row.
    horizon = (as_of + timedelta(days=2)).date()
    skip: set[str] = set()
    while True:
        with db.unit_of_work() as uow:
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
            ins = uow.session.scalars(uow.for_update(stmt)).first()
            if ins is None:
                break
            if local_midnight(ins.due_date, ins.time_zone) > as_of:
                skip.add(ins.installment_id)
                continue
            try:
                with uow.session.begin_nested():
                    outcome = _issue_installment(uow, gateway, policy, ins, as_of)
            except Exception:
                log.exception(
                    "installment %s could not be invoiced; the next sweep retries", ins.installment_id
                )
                skip.add(ins.installment_id)
                continue
            result.issued += 1
            if outcome == PaymentStatus.SUCCEEDED:
                result.paid += 1
            elif outcome == PaymentStatus.DECLINED:
                result.payment_failed += 1
    done: set[str] = set()
    while True:
        with db.unit_of_work() as uow:
            stmt = (
                select(InvoiceRow)
                .where(
                    InvoiceRow.status == InvoiceStatus.OPEN.value,
                    InvoiceRow.overdue_time.is_(None),
                    InvoiceRow.due_date <= horizon,
                    InvoiceRow.invoice_id.not_in(done) if done else True,
                )
                .order_by(InvoiceRow.due_date, InvoiceRow.invoice_id)
                .limit(SWEEP_BATCH)
            )
            rows = uow.session.scalars(uow.for_update(stmt)).all()
            if not rows:
                break
            for row in rows:
                done.add(row.invoice_id)
                if _state(row).is_overdue_at(as_of, row.due_date, row.time_zone):
                    row.overdue_time = as_of
                    uow.session.flush()

                    events.invoice_overdue(uow, row)
                    result.overdue += 1
    return result


def _issue_installment(
    uow: UnitOfWork, gateway: PaymentGateway, policy: Policy, ins: InstallmentRow, as_of: datetime
) -> PaymentStatus:
    key = _installment_key(ins.subscription_id, ins.term_start_date, ins.sequence)
    prof = uow.session.get(ProfileRow, ins.account_id)
    if prof is None:
        raise RuleViolation(
            f"account {ins.account_id} has no billing profile", reason="BILLING_PROFILE_NOT_FOUND"
        )
    method = uow.session.get(PaymentMethodRow, ins.payment_method_id) if ins.payment_method_id else None
    issue_day = local_date(as_of, ins.time_zone)
    decision = decide_tax(_tax_status(prof), issue_day)
    inputs = [
        LineInput(
            description=f"{d['description']} (installment {ins.sequence} of {ins.count})",
            quantity=d["quantity"],
            unit_price=Decimal(d["unit_price"]),
            period_start=date.fromisoformat(d["period_start"]) if d.get("period_start") else None,
            period_end=date.fromisoformat(d["period_end"]) if d.get("period_end") else None,
            amount=Decimal(d["amount"]),
            product_code=d.get("product_code", ""),
        )
        for d in json.loads(ins.lines_json)
    ]
    lines = price_lines(inputs, ins.currency, decision)
    row, payment = _issue(
        uow,
        gateway,
        policy,
        request_id=None,
        installment_key=key,
        account_id=ins.account_id,
        subscription_id=ins.subscription_id,
        order_number=ins.order_number,
        kind=InvoiceKind.INSTALLMENT,
        currency=ins.currency,
        lines=lines,
        decision=decision,
        prof=prof,
        method=method,
        tz=ins.time_zone,
        installment_sequence=ins.sequence,
        idempotency_key=f"installment:{key}",
        issue_time=as_of,
    )
    ins.invoice_id = row.invoice_id
    ins.status = (
        InstallmentStatus.PAID if row.status == InvoiceStatus.PAID.value else InstallmentStatus.INVOICED
    ).value
    uow.session.flush()
    return PaymentStatus(payment.status)

"""Clients of the other services, in domain terms: billing (tax, invoices, credit notes) and entitlement
(how many users hold seats). Requests carry ids derived from the caller's request id, so a retried order
never charges twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from services.subscription.domain.model import OrderLine, PaymentMethodType
from services.subscription.domain.previews import INSTALLMENT_COUNT
from services.subscription.domain.subscription import Subscription
from shared.errors import NotFound, RuleViolation
from shared.grpc.codec import date_of, date_pb, time_of, timestamp
from shared.money import from_proto, to_proto
from tenure.billing.v1 import billing_pb2
from tenure.common.v1 import clock_pb2, common_pb2
from tenure.entitlement.v1 import entitlement_pb2

_date = date_pb


def _due(msg) -> date:
    d = date_of(msg, "due_date")
    if d is None:
        raise ValueError("billing sent an installment without a due date")
    return d


def _lines(lines: list[OrderLine], product_code: str = "") -> list[billing_pb2.InvoiceLineInput]:
    return [
        billing_pb2.InvoiceLineInput(
            description=ln.description,
            quantity=ln.quantity,
            unit_price=to_proto(ln.unit_price, ln.currency),
            period_start_date=_date(ln.period_start_date),
            period_end_date=_date(ln.period_end_date),
            amount=to_proto(ln.amount, ln.currency),
            product_code=product_code,
            explanation=ln.explanation(),
        )
        for ln in lines
    ]


@dataclass(frozen=True)
class Tax:
    subtotal: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class IssuedInvoice:
    invoice_id: str
    total: Decimal
    payment_status: str  # SUCCEEDED, DECLINED, PENDING, NOT_REQUIRED
    decline_reason: str
    payment_method_type: PaymentMethodType | None


@dataclass(frozen=True)
class IssuedCredit:
    credit_note_id: str
    amount: Decimal


PM_TYPES = {
    common_pb2.PAYMENT_METHOD_TYPE_CARD: PaymentMethodType.CARD,
    common_pb2.PAYMENT_METHOD_TYPE_PAYPAL: PaymentMethodType.PAYPAL,
    common_pb2.PAYMENT_METHOD_TYPE_INVOICE: PaymentMethodType.INVOICE,
}
KINDS = {
    "new": billing_pb2.INVOICE_KIND_NEW,
    "trial_converted": billing_pb2.INVOICE_KIND_NEW,
    "add_seats": billing_pb2.INVOICE_KIND_ADD_SEATS,
    "renewal": billing_pb2.INVOICE_KIND_RENEWAL,
    "align": billing_pb2.INVOICE_KIND_ALIGN,
    "upgrade": billing_pb2.INVOICE_KIND_UPGRADE,
}


@dataclass(frozen=True)
class ScheduledInstallment:
    """One installment billing holds for a subscription (amount before tax)."""

    sequence: int
    count: int
    due_date: date
    amount: Decimal
    status: str  # SCHEDULED, INVOICED, PAID, CANCELLED
    order_number: str


@dataclass(frozen=True, slots=True)
class BillingSweep:
    done: int
    next_due: datetime | None


class Billing:
    """The billing service, through a `ServiceClient` (retries, deadlines, errors mapped back)."""

    def __init__(self, client) -> None:
        self.client = client

    def preview_tax(self, sub: Subscription, lines: list[OrderLine]) -> Tax:
        resp = self.client.PreviewTax(
            billing_pb2.PreviewTaxRequest(
                account_id=sub.account_id,
                currency_code=sub.currency,
                lines=_lines(lines, sub.product_code),
                country_code=sub.country_code,
            )
        )
        return Tax(
            from_proto(resp.subtotal).amount, from_proto(resp.tax).amount, from_proto(resp.total).amount
        )

    def create_invoice(
        self,
        *,
        request_id: str,
        sub: Subscription,
        order_number: str,
        kind: str,
        lines: list[OrderLine],
        term_start_date: date,
    ) -> IssuedInvoice:
        from services.subscription.codec import channel_pb, term_pb

        resp = self.client.CreateInvoice(
            billing_pb2.CreateInvoiceRequest(
                request_id=request_id,
                account_id=sub.account_id,
                subscription_id=sub.subscription_id,
                order_number=order_number,
                kind=KINDS[kind],
                currency_code=sub.currency,
                lines=_lines(lines, sub.product_code),
                payment_method_id=sub.payment_method_id,
                term=term_pb(sub.term),
                term_start_date=_date(term_start_date),
                channel=channel_pb(sub.channel),
                quote=sub.channel.value == "PARTNER_QUOTE",
                time_zone=sub.time_zone,
                buyer_email=sub.buyer_email,
                country_code=sub.country_code,
                buyer_name=sub.buyer_name,
                language=sub.buyer_language,
            )
        )
        inv = resp.invoice
        return IssuedInvoice(
            invoice_id=inv.invoice_id,
            total=from_proto(inv.total).amount if inv.HasField("total") else Decimal(0),
            payment_status=billing_pb2.PaymentStatus.Name(resp.payment.status).removeprefix(
                "PAYMENT_STATUS_"
            ),
            decline_reason=resp.payment.decline_reason or inv.decline_reason,
            payment_method_type=PM_TYPES.get(inv.payment_method_type),
        )

    def void_invoice(self, *, request_id: str, invoice_id: str, reason: str) -> None:
        try:
            self.client.VoidInvoice(
                billing_pb2.VoidInvoiceRequest(request_id=request_id, invoice_id=invoice_id, reason=reason)
            )
        except RuleViolation:
            pass  # already paid or void: nothing to undo here

    def refund_invoice(self, *, request_id: str, invoice_id: str, reason: str) -> IssuedCredit | None:
        """Credit everything paid on the invoice (refunded to the card or PayPal); an invoice with nothing
        paid is voided instead. None when nothing was credited."""
        return self._credit(
            billing_pb2.IssueCreditNoteRequest(request_id=request_id, invoice_id=invoice_id, reason=reason)
        )

    def credit_invoice(
        self, *, request_id: str, invoice_id: str, amount: Decimal, currency: str, reason: str
    ) -> IssuedCredit | None:
        """A credit note of `amount` (tax included) against the invoice, refunded to the card or PayPal (or
        kept as cash balance); an invoice with nothing paid is voided instead. None when nothing was
        credited. Billing keeps one credit note per `request_id`: derive it from the invoice so a retried
        or repeated cancellation credits once."""
        return self._credit(
            billing_pb2.IssueCreditNoteRequest(
                request_id=request_id, invoice_id=invoice_id, amount=to_proto(amount, currency), reason=reason
            )
        )

    def _credit(self, request: billing_pb2.IssueCreditNoteRequest) -> IssuedCredit | None:
        try:
            resp = self.client.IssueCreditNote(request)
        except RuleViolation as e:
            if e.reason != "CREDIT_EXCEEDS_PAID":
                raise
            self.void_invoice(
                request_id=f"{request.request_id}:void", invoice_id=request.invoice_id, reason=request.reason
            )
            return None
        cn = resp.credit_note
        return IssuedCredit(cn.credit_note_id, from_proto(cn.amount).amount)

    def cancel_installments(self, *, request_id: str, subscription_id: str, reason: str) -> None:
        try:
            self.client.CancelInstallments(
                billing_pb2.CancelInstallmentsRequest(
                    request_id=request_id, subscription_id=subscription_id, reason=reason
                )
            )
        except NotFound:
            pass

    def installments(self, subscription_id: str) -> list[ScheduledInstallment]:
        """The installments billing holds for the subscription (each term's three)."""
        resp = self.client.ListInstallments(
            billing_pb2.ListInstallmentsRequest(subscription_id=subscription_id)
        )
        return [
            ScheduledInstallment(
                sequence=i.sequence,
                count=INSTALLMENT_COUNT,
                due_date=_due(i.due_date),
                amount=from_proto(i.amount).amount if i.HasField("amount") else Decimal(0),
                status=billing_pb2.InstallmentStatus.Name(i.status).removeprefix("INSTALLMENT_STATUS_"),
                order_number=i.order_number,
            )
            for i in resp.installments
        ]

    def check_payment_method(self, sub: Subscription, payment_method_id: str) -> None:
        """Billing's own pay-by-invoice rules (prepay-only accounts, quotes, earlier invoices)."""
        from services.subscription.codec import channel_pb

        resp = self.client.CheckPaymentMethod(
            billing_pb2.CheckPaymentMethodRequest(
                account_id=sub.account_id,
                payment_method_id=payment_method_id,
                channel=channel_pb(sub.channel),
                quote=sub.channel.value == "PARTNER_QUOTE",
                subscription_id=sub.subscription_id,
            )
        )
        if not resp.allowed:
            raise RuleViolation(
                resp.message or "billing refuses this payment method for the subscription",
                reason=resp.reason.removeprefix("ERROR_REASON_") or "PAY_BY_INVOICE_NOT_ALLOWED",
            )

    def mark_prepay_only(self, *, request_id: str, account_id: str, reason: str) -> None:
        """After a cancellation for an unpaid credit line: pay by invoice is refused from now on."""
        self.client.MarkPrepayOnly(
            billing_pb2.MarkPrepayOnlyRequest(request_id=request_id, account_id=account_id, reason=reason)
        )

    def run_sweep(self, as_of: datetime) -> BillingSweep:
        """Billing's sweep (installment invoices, overdue marks) as of `as_of`: the number of things it did
        and the next instant at which it will have something to do."""
        r = self.client.RunBillingSweep(
            billing_pb2.RunBillingSweepRequest(as_of_time=timestamp(as_of)), timeout=120
        )
        return BillingSweep(
            r.issued + r.overdue + r.paid + r.payment_failed + r.retried,
            time_of(r.next_due_time) if r.HasField("next_due_time") else None,
        )

    def payment_method_type(self, account_id: str, payment_method_id: str) -> PaymentMethodType:
        resp = self.client.ListPaymentMethods(billing_pb2.ListPaymentMethodsRequest(account_id=account_id))
        for pm in resp.payment_methods:
            if pm.payment_method_id == payment_method_id:
                return PM_TYPES[pm.type]
        raise NotFound(
            f"payment method {payment_method_id!r} is not one of the account's", reason="NOT_FOUND"
        )


class Entitlement:
    """The entitlement service: how many users hold seats on a subscription."""

    def __init__(self, client) -> None:
        self.client = client

    def assigned_seats(self, subscription_id: str) -> int:
        try:
            resp = self.client.GetSubscriptionAccess(
                entitlement_pb2.GetSubscriptionAccessRequest(subscription_id=subscription_id)
            )
        except NotFound:
            return 0  # entitlement has not seen the subscription yet: nobody is assigned
        return resp.assigned_seats


class PeerClock:
    """Another service's `tenure.common.v1.ClockService`: move its test clock, drain its outbox."""

    def __init__(self, name: str, client) -> None:
        self.name = name
        self.client = client
        self.next_due: datetime | None = None  # its own next due instant, as its last drain answered

    def get_time(self) -> datetime:
        return time_of(self.client.GetTime(clock_pb2.GetTimeRequest()).now_time)

    def set_time(self, to: datetime) -> None:
        self.client.SetTime(clock_pb2.SetTimeRequest(to_time=timestamp(to)))

    def drain(self, timeout: float = 30.0) -> int:
        """Deliver what waits in its outbox; the number of events still pending."""
        r = self.client.DrainOutbox(
            clock_pb2.DrainOutboxRequest(timeout_seconds=timeout), timeout=timeout + 5
        )
        self.next_due = time_of(r.next_due_time) if r.HasField("next_due_time") else None
        return r.pending
